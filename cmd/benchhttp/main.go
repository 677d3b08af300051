// Command benchhttp measures what users of clustod feel, side by side with
// what this machine can do: it generates an inventory with clustod
// generate (once, kept in the work directory), starts the real clustod on
// loopback over a copy of it, drives it with concurrent clients, and
// prints each figure next to its baseline and the ratio. Baselines are a
// plain net/http server answering the same bytes from memory (entity
// reads), the same query asking for one entity (a page), and the peak
// memory of the export and import themselves.
//
//	go run ./cmd/benchhttp --bin bin [--work DIR] [--racks N] [--clients N]
//
// `make bench-http` builds the binaries and runs it. Every figure is from
// one run, on one machine: compare ratios, not absolute numbers.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchhttp:", err)
		os.Exit(1)
	}
}

type config struct {
	bin, work        string
	dcs, racks       int
	clients          int
	reads, allocs    int
	pageRequests     int
	skipFiles        bool
	entityCacheOnOff bool
}

func run() error {
	var c config
	flag.StringVar(&c.bin, "bin", "bin", "directory holding the clustod binary (make build)")
	flag.StringVar(&c.work, "work", filepath.Join(os.TempDir(), "clusto-bench-http"), "directory for the generated inventory (kept between runs) and the run's copies")
	flag.IntVar(&c.dcs, "datacenters", 2, "datacenters of the generated inventory")
	flag.IntVar(&c.racks, "racks", 1163, "racks per datacenter (2 x 1163 racks of 38 servers: 100,148 entities)")
	flag.IntVar(&c.clients, "clients", 32, "concurrent clients")
	flag.IntVar(&c.reads, "reads", 30000, "entity reads per measurement")
	flag.IntVar(&c.allocs, "allocs", 3000, "allocations per measurement")
	flag.IntVar(&c.pageRequests, "pages", 200, "query pages per measurement")
	flag.BoolVar(&c.skipFiles, "skip-files", false, "skip the export and import measurements")
	flag.BoolVar(&c.entityCacheOnOff, "cache-off-too", true, "also measure entity reads with --entity-cache 0")
	flag.Parse()
	clustod, err := filepath.Abs(filepath.Join(c.bin, "clustod"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(clustod); err != nil {
		return fmt.Errorf("%s: %w (run make build first)", clustod, err)
	}
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	gen := filepath.Join(c.work, fmt.Sprintf("inv-%dx%d.db", c.dcs, c.racks))
	if _, err := os.Stat(gen); err != nil {
		fmt.Printf("generating %d datacenters of %d racks into %s ...\n", c.dcs, c.racks, gen)
		if out, err := exec.Command(clustod, "generate", "--db", gen+".tmp", "--datacenters", fmt.Sprint(c.dcs), "--racks", fmt.Sprint(c.racks)).CombinedOutput(); err != nil {
			return fmt.Errorf("generate: %v: %s", err, out)
		} else {
			fmt.Print(string(out))
		}
		if err := os.Rename(gen+".tmp", gen); err != nil {
			return err
		}
	}
	db := filepath.Join(c.work, "run.db")
	if err := copyFile(gen, db); err != nil {
		return err
	}
	defer os.Remove(db)
	token, err := mintToken(clustod, db)
	if err != nil {
		return err
	}
	fmt.Printf("\n%-44s %14s %14s %8s\n", "what", "clustod", "baseline", "ratio")

	srv, err := startServer(clustod, db)
	if err != nil {
		return err
	}
	cl := &client{base: "http://" + srv.addr, token: token, http: &http.Client{Transport: &http.Transport{MaxIdleConns: 4 * c.clients, MaxIdleConnsPerHost: 4 * c.clients}}}
	names, err := cl.names("driver:server", 2000)
	if err != nil {
		srv.stop()
		return err
	}
	if err := entityReads(cl, names, c, "GET /entities/{name}, cache on"); err != nil {
		srv.stop()
		return err
	}
	if err := pages(cl, c); err != nil {
		srv.stop()
		return err
	}
	if err := allocations(cl, c); err != nil {
		srv.stop()
		return err
	}
	if err := srv.stop(); err != nil {
		return err
	}
	if c.entityCacheOnOff {
		srv, err = startServer(clustod, db, "--entity-cache", "0")
		if err != nil {
			return err
		}
		cl.base = "http://" + srv.addr
		err = entityReads(cl, names, c, "GET /entities/{name}, no cache")
		if serr := srv.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
	}
	if !c.skipFiles {
		if err := files(clustod, gen, c.work); err != nil {
			return err
		}
	}
	return nil
}

// row prints one figure with its baseline and their ratio.
func row(what string, got, base float64, unit string) {
	ratio, baseline := "-", "-"
	if base > 0 {
		ratio, baseline = fmt.Sprintf("%.2f", got/base), fmt.Sprintf("%.1f %s", base, unit)
	}
	fmt.Printf("%-44s %14s %14s %8s\n", what, fmt.Sprintf("%.1f %s", got, unit), baseline, ratio)
}

// load runs n calls of do on clients goroutines and returns the rate and
// the 50th and 99th percentile latencies. Any error stops it.
func load(clients, n int, do func(i int) error) (rate float64, p50, p99 time.Duration, err error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, 0, e
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(n) / wall.Seconds(), lat[n/2], lat[(n*99)/100], nil
}

// entityReads reads whole entities by name from clustod and, with the
// bytes clustod answered, from a plain net/http server holding them in
// memory, by the same clients in the same run.
func entityReads(cl *client, names []string, c config, what string) error {
	bodies := map[string][]byte{}
	for _, n := range names {
		b, err := cl.get("/api/v1/entities/" + n)
		if err != nil {
			return err
		}
		bodies[n] = b
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	static := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[strings.TrimPrefix(r.URL.Path, "/api/v1/entities/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})}
	go static.Serve(ln)
	defer static.Close()
	staticCl := &client{base: "http://" + ln.Addr().String(), token: cl.token, http: cl.http}
	read := func(c *client) func(i int) error {
		return func(i int) error {
			_, err := c.get("/api/v1/entities/" + names[i%len(names)])
			return err
		}
	}
	got, _, gp99, err := load(c.clients, c.reads, read(cl))
	if err != nil {
		return err
	}
	base, _, bp99, err := load(c.clients, c.reads, read(staticCl))
	if err != nil {
		return err
	}
	row(fmt.Sprintf("%s, %d clients", what, c.clients), got, base, "req/s")
	row("  p99", ms(gp99), ms(bp99), "ms")
	return nil
}

// pages times a page of 100 whole entities against the same query's page
// of one, one client, and the summary view of the same page.
func pages(cl *client, c config) error {
	q := "/api/v1/query?q=driver:console-server"
	var times []float64
	for _, path := range []string{q, q + "&limit=1", q + "&view=summary"} {
		_, p50, _, err := load(1, c.pageRequests, func(int) error { _, err := cl.get(path); return err })
		if err != nil {
			if strings.Contains(path, "view=") {
				fmt.Println("  (this clustod has no summary view)")
				break
			}
			return err
		}
		times = append(times, ms(p50))
	}
	row("GET /query console servers, 100 full, p50", times[0], times[1], "ms")
	if len(times) == 3 {
		row("  the same page, view=summary, p50", times[2], times[1], "ms")
	}
	return nil
}

// allocations takes spare servers by query and addresses from the racks'
// blocks, 32 clients each, and checks no address was handed out twice.
func allocations(cl *client, c config) error {
	body := `{"query":"driver:server and attr:status,spare","count":1,"set":{"status":"allocated"}}`
	rate, _, p99, err := load(c.clients, c.allocs, func(int) error { _, err := cl.post("/api/v1/allocate", body); return err })
	if err != nil {
		return err
	}
	row(fmt.Sprintf("POST /allocate count 1, %d clients", c.clients), rate, 0, "req/s")
	row("  p99", ms(p99), 0, "ms")
	blocks, err := cl.names("driver:ipblock", 1000)
	if err != nil {
		return err
	}
	servers, err := cl.names("driver:server", 1000)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	dups := 0
	rate, _, p99, err = load(c.clients, c.allocs, func(i int) error {
		b := blocks[i%len(blocks)]
		out, err := cl.post("/api/v1/ipblocks/"+b+"/allocate", fmt.Sprintf(`{"entity":%q}`, servers[i%len(servers)]))
		if err != nil {
			return err
		}
		var a struct {
			Allocations []struct{ Address string } `json:"allocations"`
		}
		if err := json.Unmarshal(out, &a); err != nil || len(a.Allocations) != 1 {
			return fmt.Errorf("allocation answer %s: %v", out, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[a.Allocations[0].Address] {
			dups++
		}
		seen[a.Allocations[0].Address] = true
		return nil
	})
	if err != nil {
		return err
	}
	row(fmt.Sprintf("POST /ipblocks/{b}/allocate, %d clients", c.clients), rate, 0, "req/s")
	row("  p99", ms(p99), 0, "ms")
	fmt.Printf("  %d addresses, %d handed out twice\n", len(seen), dups)
	if dups > 0 {
		return errors.New("an address was handed out twice")
	}
	return nil
}

// files measures clustod export and import of the generated inventory:
// wall time and peak resident memory of each process.
func files(clustod, gen, work string) error {
	out := filepath.Join(work, "export.yaml")
	defer os.Remove(out)
	d, rss, err := timed(exec.Command(clustod, "export", "--db", gen, "--out", out))
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	row(fmt.Sprintf("clustod export (%d MB file), peak RSS", fi.Size()>>20), rss, 0, "MB")
	row("  wall", d.Seconds(), 0, "s")
	imported := filepath.Join(work, "import.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(imported + suffix)
	}
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(imported + suffix)
		}
	}()
	d, rss, err = timed(exec.Command(clustod, "import", out, "--db", imported))
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	row("clustod import of it, peak RSS", rss, 0, "MB")
	row("  wall", d.Seconds(), 0, "s")
	return nil
}

// timed runs cmd and returns its wall time and peak RSS in MB.
func timed(cmd *exec.Cmd) (time.Duration, float64, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		return time.Since(start), 0, nil
	}
	return time.Since(start), float64(ru.Maxrss) / 1024, nil // Maxrss is in KB on Linux
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// server is a clustod serve process.
type server struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startServer starts clustod serve on a free loopback port and waits for
// its "serving" log line, which gives the address.
func startServer(clustod, db string, extra ...string) (*server, error) {
	cmd := exec.Command(clustod, append([]string{"serve", "--db", db, "--listen", "127.0.0.1:0"}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" && !sent {
				addr <- line.Addr
				sent = true
			}
		}
		if !sent {
			close(addr)
		}
		s.done <- cmd.Wait()
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			return nil, fmt.Errorf("clustod exited before serving: %v", <-s.done)
		}
		s.addr = a
		return s, nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return nil, errors.New("clustod did not start serving within 60 s")
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		return errors.New("clustod did not stop within 60 s")
	}
}

// mintToken creates a write token in db with clustod token create.
func mintToken(clustod, db string) (string, error) {
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	out, err := exec.Command(clustod, "token", "create", name, "--role", "write", "--db", db).Output()
	if err != nil {
		return "", fmt.Errorf("token create: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// client is a token-holding HTTP client of clustod.
type client struct {
	base, token string
	http        *http.Client
}

func (c *client) do(method, path, body string) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, res.Status, b)
	}
	return b, nil
}

func (c *client) get(path string) ([]byte, error)        { return c.do("GET", path, "") }
func (c *client) post(path, body string) ([]byte, error) { return c.do("POST", path, body) }

// names lists up to max names matching q (the summary view, page by
// page).
func (c *client) names(q string, max int) ([]string, error) {
	var out []string
	for cursor := ""; len(out) < max; {
		b, err := c.post("/api/v1/query", fmt.Sprintf(`{"q":%q,"limit":%d,"view":"summary","cursor":%q}`, q, min(1000, max-len(out)), cursor))
		if err != nil {
			// A clustod from before the summary view: whole entities.
			if b, err = c.post("/api/v1/query", fmt.Sprintf(`{"q":%q,"limit":%d,"cursor":%q}`, q, min(1000, max-len(out)), cursor)); err != nil {
				return nil, err
			}
		}
		var page struct {
			Results []struct{ Name string } `json:"results"`
			Next    string                  `json:"next_cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, err
		}
		for _, r := range page.Results {
			out = append(out, r.Name)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no entity matches %s", q)
	}
	return out, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
