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
// Afterwards: no 500, no address handed out twice, the counts add up,
// every fault got its answer (or, for the aborted requests, its refusal
// in the access log), and the heap is back near where it started. With
// -short (make test runs it so under -race) there are fewer clients,
// requests and faults, and every assertion is the same.
func TestLoadWithFaults(t *testing.T) {
	// The load's shape is that of 64 callers each running its own mix of
	// requests: its queries are neither bounded per token (the clients
	// are all anonymous) nor queued (TestAdmission and TestOverload in
	// cmd/clustod test those bounds). Queued queries make the other
	// requests bunch up on the single writer, which hands its connection
	// to a random waiter, and the slow bodies' answers below then come
	// later than this test waits for.
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes, o.HeavyPerToken, o.HeavyRunning = 64<<10, 64, 64 })
	e.block("net", "10.8.0.0/16")
	clients, perClient, faults := 64, 20, 8
	if testing.Short() {
		clients, perClient, faults = 32, 4, 4 // each client still sends one request of each kind
	}
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
		req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		if err != nil {
			return -1, []byte(err.Error())
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return -1, []byte(err.Error())
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return -1, []byte(fmt.Sprintf("status %d, then reading the body: %v", res.StatusCode, err))
		}
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
						if err := jsonUnmarshal(body, &got); err != nil || len(got.Allocations) != 1 {
							t.Errorf("%s request %d: allocation answered %s (%v), want one allocation", me, i, body, err)
							break
						}
						mu.Lock()
						if prev, dup := addrs[got.Allocations[0].Address]; dup {
							t.Errorf("%s handed out to %s and %s", got.Allocations[0].Address, prev, me)
						}
						addrs[got.Allocations[0].Address] = me
						mu.Unlock()
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
	for f := 0; f < faults; f++ {
		wg.Add(3)
		go func(f int) { // a slow body, trickled over a raw connection
			defer wg.Done()
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Errorf("slow body %d: %v", f, err)
				return
			}
			defer conn.Close()
			body := fmt.Sprintf(`{"key":"slow","value":"x%d"}`, f)
			if _, err := fmt.Fprintf(conn, "POST %s/entities/c00/attrs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", api, len(body)); err != nil {
				t.Errorf("slow body %d: sending the head: %v", f, err)
				return
			}
			for i := 0; i < len(body); i++ {
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					t.Errorf("slow body %d: byte %d: %v", f, i, err)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			// Read the answer; the server keeps the connection open after it.
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4096)
			n, err := conn.Read(buf)
			if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 201")) {
				t.Errorf("slow body %d answered %q (%v)", f, buf[:n], err)
			}
		}(f)
		go func(f int) { // an aborted request: half a body, then hang up
			defer wg.Done()
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Errorf("aborted request %d: %v", f, err)
				return
			}
			defer conn.Close()
			if _, err := fmt.Fprintf(conn, "POST %s/ipblocks/net/allocate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"entity\":", api); err != nil {
				t.Errorf("aborted request %d: %v", f, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}(f)
		go func(f int) { // an oversized body
			defer wg.Done()
			st, body := do("POST", api+"/entities", `{"name":"big","driver":"server","attrs":[{"key":"k","value":"`+strings.Repeat("x", 128<<10)+`"}]}`)
			if st != http.StatusRequestEntityTooLarge {
				t.Errorf("oversized body %d: status %d: %.200s", f, st, body)
			}
		}(f)
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
	// Observed growth (2026-12-02): 1.7-2.9 MiB over 13 runs of the full
	// load (1,280 requests) without -race, 1.9-2.3 MiB with it, and
	// 0.8-1.1 MiB with -race -short; part of it is the access log this
	// test keeps in memory (docs/reliability.md records a run at 3.7
	// MiB). The bound is under three times the most seen here: a leak of
	// 5 KiB a request of the full load goes past it.
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Errorf("heap grew by %.1f MiB and stayed", float64(grew)/(1<<20))
	}
	t.Logf("statuses %v; %d allocations, %d attribute writes; heap %d -> %d KiB", statuses, allocsOK.Load(), attrsOK.Load(), before.HeapInuse>>10, after.HeapInuse>>10)
	// Every aborted request reached the handler and was refused (its
	// answer had nowhere to go), and none allocated (the counts above).
	// Close waits for every request in flight, so their log lines are in.
	e.ts.Close()
	aborted := 0
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "request" && l["path"] == api+"/ipblocks/net/allocate" && l["status"] == float64(http.StatusBadRequest) {
			aborted++
		}
	}
	if aborted != faults {
		t.Errorf("%d aborted allocations refused in the access log, want %d", aborted, faults)
	}
}

func jsonUnmarshal(b []byte, v any) error {
	return json.NewDecoder(bytes.NewReader(b)).Decode(v)
}
