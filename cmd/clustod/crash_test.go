package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ack is a write the server acknowledged before it was killed.
type ack struct {
	entity  string
	address string // for allocations
}

// Crash consistency of the real binary: writers create entities and
// allocate addresses over HTTP while clustod is killed with SIGKILL at
// random moments, 20 times. After each kill: clustod check passes, every
// acknowledged create and allocation is there, and no entity is
// half-written (each has all three attributes it was created with).
func TestCrashConsistencyUnderSIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills the real binary 20 times")
	}
	db := filepath.Join(t.TempDir(), "crash.db")
	d := startDaemon(t, "--db", db, "--listen", "127.0.0.1:0")
	d.want(d.call("POST", "/api/v1/entities", "", jsonBody(map[string]any{"name": "net", "driver": "ipblock",
		"attrs": []map[string]any{{"key": "cidr", "value": "10.0.0.0/16"}}})), 201)
	var acked []ack
	seq := 0
	client := &http.Client{Timeout: 5 * time.Second}
	const rounds = 20
	for round := 0; round < rounds; round++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(base string) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					seq++
					name := fmt.Sprintf("w%06d", seq)
					mu.Unlock()
					body := jsonBody(map[string]any{"name": name, "driver": "server", "attrs": []map[string]any{
						{"key": "status", "value": "new"}, {"key": "serial", "value": "SN" + name}, {"key": "memory_gb", "value": 64}}})
					res, err := client.Post(base+"/api/v1/entities", "application/json", body)
					if err != nil {
						return // killed
					}
					res.Body.Close()
					if res.StatusCode != 201 {
						t.Errorf("create %s: status %d", name, res.StatusCode)
						return
					}
					mu.Lock()
					acked = append(acked, ack{entity: name})
					mu.Unlock()
					res, err = client.Post(base+"/api/v1/ipblocks/net/allocate", "application/json", jsonBody(map[string]any{"entity": name}))
					if err != nil {
						return
					}
					var got struct {
						Allocations []struct{ Address string }
					}
					json.NewDecoder(res.Body).Decode(&got)
					res.Body.Close()
					if res.StatusCode != 201 || len(got.Allocations) != 1 {
						t.Errorf("allocate for %s: status %d", name, res.StatusCode)
						return
					}
					mu.Lock()
					acked = append(acked, ack{entity: name, address: got.Allocations[0].Address})
					mu.Unlock()
				}
			}(d.base)
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		d.cmd.Wait()
		close(stop)
		wg.Wait()
		if out, stderr, code := runCLI(t, "check", "--db", db); code != 0 {
			t.Fatalf("round %d: clustod check after SIGKILL: exit %d\n%s%s", round, code, out, stderr)
		}
		d = startDaemon(t, "--db", db, "--listen", "127.0.0.1:0")
		for _, a := range acked {
			res := d.call("GET", "/api/v1/entities/"+a.entity, "", nil)
			if res.status != 200 {
				t.Fatalf("round %d: acknowledged %s is missing (%d)", round, a.entity, res.status)
			}
			attrs := res.body["attrs"].([]any)
			if a.address == "" {
				continue
			}
			found := false
			for _, x := range attrs {
				m := x.(map[string]any)
				if m["key"] == "ip" && m["value"] == a.address {
					found = true
				}
			}
			if !found {
				t.Fatalf("round %d: acknowledged allocation %s of %s is missing", round, a.address, a.entity)
			}
		}
	}
	// Every entity that exists is whole, acknowledged or not.
	page := d.want(d.call("GET", "/api/v1/query?q=driver:server&limit=1000", "", nil), 200)
	for cursor := ""; ; {
		for _, x := range page.body["results"].([]any) {
			e := x.(map[string]any)
			n := 0
			for _, a := range e["attrs"].([]any) {
				if a.(map[string]any)["key"] != "ip" {
					n++
				}
			}
			if n != 3 {
				t.Errorf("%s is half-written: %v", e["name"], e["attrs"])
			}
		}
		cursor, _ = page.body["next_cursor"].(string)
		if cursor == "" {
			break
		}
		page = d.want(d.call("GET", "/api/v1/query?q=driver:server&limit=1000&cursor="+cursor, "", nil), 200)
	}
	t.Logf("%d kills survived; %d acknowledged writes checked after each", rounds, len(acked))
	d.stop()
}

func jsonBody(v any) *bytes.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
