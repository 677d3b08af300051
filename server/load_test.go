package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
)

// Load with faults: 64 clients mixing reads, queries, attribute edits and
// allocations for a fixed number of requests, while other clients send
// slow bodies, abort connections mid-request and send oversized bodies.
// Afterwards: no 500, no address handed out twice, the counts add up, and
// the heap is back near where it started.
func TestLoadWithFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of requests")
	}
	// The load's shape is that of 64 callers each running its own mix of
	// requests: its queries are neither bounded per token (the clients
	// are all anonymous) nor queued (TestAdmission and TestOverload in
	// cmd/clustod test those bounds). Queued queries make the other
	// requests bunch up on the single writer, which hands its connection
	// to a random waiter, and the slow bodies' answers below then come
	// later than this test waits for.
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes, o.HeavyPerToken, o.HeavyRunning = 64<<10, 64, 64 })
	e.block("net", "10.8.0.0/16")
	const clients, perClient = 64, 20
	for c := 0; c < clients; c++ {
		e.mk(fmt.Sprintf("c%02d", c), "server")
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		addrs    = map[string]string{}
		attrsOK  atomic.Int64
		allocsOK atomic.Int64
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	do := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return -1, []byte(err.Error())
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			me := fmt.Sprintf("c%02d", c)
			for i := 0; i < perClient; i++ {
				var st int
				var body []byte
				switch i % 4 {
				case 0:
					st, body = do("GET", api+"/entities/"+me, "")
				case 1:
					st, body = do("GET", api+"/query?q="+url.QueryEscape("driver:server and name:c0*"), "")
				case 2:
					st, body = do("POST", api+"/entities/"+me+"/attrs", fmt.Sprintf(`{"key":"seen","value":"r%d"}`, i))
					if st == http.StatusCreated {
						attrsOK.Add(1)
					}
				case 3:
					st, body = do("POST", api+"/ipblocks/net/allocate", fmt.Sprintf(`{"entity":"%s"}`, me))
					if st == http.StatusCreated {
						allocsOK.Add(1)
						var got entity.Allocations
						if err := jsonUnmarshal(body, &got); err == nil && len(got.Allocations) == 1 {
							mu.Lock()
							if prev, dup := addrs[got.Allocations[0].Address]; dup {
								t.Errorf("%s handed out to %s and %s", got.Allocations[0].Address, prev, me)
							}
							addrs[got.Allocations[0].Address] = me
							mu.Unlock()
						}
					}
				}
				mu.Lock()
				statuses[st]++
				mu.Unlock()
				if st >= 500 || st < 0 {
					t.Errorf("%s request %d: status %d: %s", me, i, st, body)
				}
			}
		}(c)
	}
	// Faults alongside the load.
	host := strings.TrimPrefix(e.ts.URL, "http://")
	for f := 0; f < 8; f++ {
		wg.Add(3)
		go func(f int) { // a slow body, trickled over a raw connection
			defer wg.Done()
			conn, err := net.Dial("tcp", host)
			if err != nil {
				return
			}
			defer conn.Close()
			body := fmt.Sprintf(`{"key":"slow","value":"x%d"}`, f)
			fmt.Fprintf(conn, "POST %s/entities/c00/attrs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", api, len(body))
			for i := 0; i < len(body); i++ {
				conn.Write([]byte{body[i]})
				time.Sleep(5 * time.Millisecond)
			}
			// Read the answer; the server keeps the connection open after it.
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4096)
			n, _ := conn.Read(buf)
			if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 201")) {
				t.Errorf("slow body answered %q", buf[:n])
			}
		}(f)
		go func() { // an aborted request: half a body, then hang up
			defer wg.Done()
			conn, err := net.Dial("tcp", host)
			if err != nil {
				return
			}
			fmt.Fprintf(conn, "POST %s/ipblocks/net/allocate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"entity\":", api)
			time.Sleep(20 * time.Millisecond)
			conn.Close()
		}()
		go func() { // an oversized body
			defer wg.Done()
			st, _ := do("POST", api+"/entities", `{"name":"big","driver":"server","attrs":[{"key":"k","value":"`+strings.Repeat("x", 128<<10)+`"}]}`)
			if st != http.StatusRequestEntityTooLarge {
				t.Errorf("oversized body: status %d", st)
			}
		}()
	}
	wg.Wait()
	// The counts add up.
	var st struct{ Allocated int64 }
	e.do("GET", api+"/ipblocks/net", nil).want(t, http.StatusOK).decode(t, &st)
	if st.Allocated != allocsOK.Load() || int64(len(addrs)) != allocsOK.Load() {
		t.Errorf("block holds %d, clients got %d allocations (%d distinct)", st.Allocated, allocsOK.Load(), len(addrs))
	}
	var seen int64
	for c := 0; c < clients; c++ {
		for _, a := range e.get(fmt.Sprintf("c%02d", c)).Attrs {
			if a.Key == "seen" {
				seen++
			}
		}
	}
	if seen != attrsOK.Load() {
		t.Errorf("%d attributes stored, clients were told %d", seen, attrsOK.Load())
	}
	if problems, err := e.store.Check(t.Context()); err != nil || len(problems) > 0 {
		t.Errorf("check after the load: %v %v", problems, err)
	}
	client.CloseIdleConnections()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 32<<20 {
		t.Errorf("heap grew by %d MiB and stayed", grew>>20)
	}
	t.Logf("statuses %v; %d allocations, %d attribute writes; heap %d -> %d KiB", statuses, allocsOK.Load(), attrsOK.Load(), before.HeapInuse>>10, after.HeapInuse>>10)
}

func jsonUnmarshal(b []byte, v any) error {
	return json.NewDecoder(bytes.NewReader(b)).Decode(v)
}
