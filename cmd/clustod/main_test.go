package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity/store"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// clustodBinary builds the real binary once per test run.
func clustodBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the clustod binary")
	}
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go tool not found: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "clustod-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "clustod")
		out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// daemon is a running clustod with its log lines.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	mu   sync.Mutex
	logs []map[string]any
	raw  bytes.Buffer
	done chan struct{}
}

// startDaemon runs clustod serve and waits for it to say where it listens.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, nil, args...)
}

// startDaemonEnv is startDaemon with settings in the environment (NAME=VALUE).
func startDaemonEnv(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	return startDaemonBin(t, clustodBinary(t), env, args...)
}

// startDaemonBin is startDaemonEnv with the clustod binary at bin.
func startDaemonBin(t *testing.T, bin string, env []string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "CLUSTO_DB=", "CLUSTO_LISTEN=", "CLUSTO_DRIVERS=", "CLUSTO_MAX_BODY=", "CLUSTO_BACKUP_DIR=", "CLUSTO_BACKUP_KEEP=", "CLUSTO_CONFIG=", "CLUSTO_ALLOW_ORIGIN=", "CLUSTO_INSECURE=", "CLUSTO_SEED=",
		"CLUSTO_HEAVY_RUNNING=", "CLUSTO_HEAVY_QUEUE=", "CLUSTO_HEAVY_PER_TOKEN=", "CLUSTO_HEAVY_WAIT=", "CLUSTO_QUERY_TIMEOUT=", "CLUSTO_DRY_RUN_TIMEOUT=", "CLUSTO_MAX_ANSWER=")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.raw.WriteString(line + "\n")
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				d.logs = append(d.logs, m)
				if m["msg"] == "serving" {
					addr <- m["addr"].(string)
				}
			}
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
	})
	select {
	case a := <-addr:
		d.base = "http://" + a
	case <-d.done:
		d.cmd.Wait()
		t.Fatalf("clustod exited before serving:\n%s", d.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("clustod did not start in 30s:\n%s", d.log())
	}
	return d
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.raw.String()
}

func (d *daemon) logLines() []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]map[string]any(nil), d.logs...)
}

// stop sends SIGTERM and returns the exit code.
func (d *daemon) stop() int {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	<-d.done
	err := d.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return 0
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (d *daemon) call(method, path, token string, body io.Reader) answer {
	d.t.Helper()
	req, err := http.NewRequest(method, d.base+path, body)
	if err != nil {
		d.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v\n%s", method, path, err, d.log())
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		d.t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return answer{res.StatusCode, res.Header, m}
}

func (d *daemon) want(a answer, status int) answer {
	d.t.Helper()
	if a.status != status {
		d.t.Fatalf("status %d, want %d: %v", a.status, status, a.body)
	}
	return a
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(clustodBinary(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// The real binary on a temporary database, driven over HTTP on loopback.
func TestEndToEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inventory.db")
	d := startDaemon(t, "--db", db, "--listen", "127.0.0.1:0")
	if !strings.Contains(d.log(), "WITHOUT authentication, on loopback only") {
		t.Fatalf("no warning about serving without tokens:\n%s", d.log())
	}
	h := d.want(d.call("GET", "/healthz", "", nil), 200)
	if h.body["status"] != "ok" {
		t.Fatalf("healthz %v", h.body)
	}
	d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"dc1","driver":"datacenter"}`)), 201)
	d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"rack101","driver":"rack"}`)), 201)
	d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"server1","driver":"server","attrs":[{"key":"serial","value":"SN1"}]}`)), 201)
	d.want(d.call("POST", "/api/v1/entities/rack101/children", "", strings.NewReader(`{"child":"server1","position":13}`)), 201)
	d.want(d.call("POST", "/api/v1/entities/dc1/children", "", strings.NewReader(`{"child":"rack101"}`)), 201)

	// A token made while the server runs locks it at once.
	out, errOut, code := runCLI(t, "token", "create", "ci-bot", "--role", "write", "--db", db)
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	if !strings.HasPrefix(token, "clusto_") || !strings.Contains(errOut, "shown only this once") {
		t.Fatalf("token create printed %q / %q", out, errOut)
	}
	d.want(d.call("GET", "/api/v1/entities/server1", "", nil), 401)
	reader, _, _ := runCLI(t, "token", "create", "viewer", "--role=read", "--db", db)
	reader = strings.TrimSpace(reader)
	late, _, _ := runCLI(t, "token", "create", "late-writer", "--role", "write", "--db", db)
	late = strings.TrimSpace(late)

	got := d.want(d.call("GET", "/api/v1/lookup?term=sn1", reader, nil), 200)
	if got.body["name"] != "server1" || !strings.HasPrefix(got.header.Get("ETag"), `"2-`) {
		t.Fatalf("lookup: %v %v", got.body, got.header)
	}
	d.want(d.call("POST", "/api/v1/entities/server1/attrs", reader, strings.NewReader(`{"key":"k","value":1}`)), 403)
	d.want(d.call("POST", "/api/v1/entities/server1/attrs", token, strings.NewReader(`{"key":"owner","value":"ops"}`)), 201)
	loc := d.want(d.call("GET", "/api/v1/entities/server1/locate", reader, nil), 200)
	var lines []string
	for _, l := range loc.body["lines"].([]any) {
		lines = append(lines, l.(map[string]any)["text"].(string))
	}
	if strings.Join(lines, "\n") != "server1 -> in RU13 of rack101\nrack101 -> in datacenter dc1" {
		t.Fatalf("locate: %q", lines)
	}
	ch := d.want(d.call("GET", "/api/v1/changes?since=5", reader, nil), 200)
	changes := ch.body["changes"].([]any)
	if len(changes) != 1 || changes[0].(map[string]any)["actor"] != "ci-bot" {
		t.Fatalf("changes: %v", changes)
	}

	list, _, code := runCLI(t, "token", "list", "--db", db)
	if code != 0 || !strings.Contains(list, "ci-bot") || !strings.Contains(list, "viewer") || strings.Contains(list, "clusto_") {
		t.Fatalf("token list (%d):\n%s", code, list)
	}
	// The server has just verified ci-bot (twice: the second from its
	// token cache); a revocation by another process, on the file, ends it
	// at the next request.
	d.want(d.call("GET", "/api/v1/whoami", token, nil), 200)
	d.want(d.call("GET", "/api/v1/whoami", token, nil), 200)
	if _, e, code := runCLI(t, "token", "revoke", "ci-bot", "--db", db); code != 0 {
		t.Fatalf("revoke: %s", e)
	}
	d.want(d.call("GET", "/api/v1/whoami", token, nil), 401)

	// SIGTERM finishes a request in flight: its body is still arriving
	// when the signal comes, and the handler is waiting to decode it.
	pr, pw := io.Pipe()
	result := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", d.base+"/api/v1/entities/server1/attrs", pr)
		req.Header.Set("Authorization", "Bearer "+late)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- answer{status: -1, body: map[string]any{"err": err.Error()}}
			return
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		result <- answer{status: res.StatusCode, body: m}
	}()
	pw.Write([]byte(`{"key":"late",`))
	time.Sleep(300 * time.Millisecond) // the server is now reading the body
	exited := make(chan int, 1)
	go func() { exited <- d.stop() }()
	waitFor(t, func() bool { return strings.Contains(d.log(), "finishing requests in flight") })
	time.Sleep(200 * time.Millisecond)
	pw.Write([]byte(`"value":"x"}`))
	pw.Close()
	if a := <-result; a.status != 201 {
		t.Fatalf("request in flight at SIGTERM: status %d %v\n%s", a.status, a.body, d.log())
	}
	if code := <-exited; code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, d.log())
	}
	var stopped, accessLogged, shuttingDown bool
	for _, l := range d.logLines() {
		switch {
		case l["msg"] == "shutting down: finishing requests in flight":
			shuttingDown = true
		case l["msg"] == "request" && l["actor"] == "late-writer" && !shuttingDown:
			t.Fatalf("the late request finished before the shutdown began; the test proves nothing:\n%s", d.log())
		case l["msg"] == "stopped":
			stopped = true
		}
		if l["msg"] == "request" && l["actor"] == "ci-bot" && l["method"] == "POST" && l["status"] == float64(201) && l["request_id"] != "" {
			accessLogged = true
		}
	}
	if !stopped || !accessLogged {
		t.Fatalf("log lacks the access line or the stop:\n%s", d.log())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRefusesOpenListenWithoutTokens(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inventory.db")
	_, errOut, code := runCLI(t, "serve", "--db", db, "--listen", "0.0.0.0:0")
	if code != 1 || !strings.Contains(errOut, "refusing to listen") || !strings.Contains(errOut, "--insecure") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	// With a token it starts, requiring it.
	out, _, _ := runCLI(t, "token", "create", "root", "--role", "admin", "--db", db)
	d := startDaemon(t, "--db", db, "--listen", "0.0.0.0:0")
	d.base = strings.Replace(d.base, "0.0.0.0", "127.0.0.1", 1)
	d.base = strings.Replace(d.base, "[::]", "127.0.0.1", 1)
	d.want(d.call("GET", "/api/v1/whoami", "", nil), 401)
	who := d.want(d.call("GET", "/api/v1/whoami", strings.TrimSpace(out), nil), 200)
	if who.body["name"] != "root" {
		t.Fatalf("whoami %v", who.body)
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestMaxBodyFlag(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inventory.db")
	d := startDaemon(t, "--db", db, "--listen", "127.0.0.1:0", "--max-body", "64")
	a := d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"s1","driver":"server","attrs":[{"key":"a","value":"`+strings.Repeat("x", 100)+`"}]}`)), 413)
	if a.body["error"].(map[string]any)["code"] != "too_large" {
		t.Fatalf("%v", a.body)
	}
	d.stop()
}

// The token commands, in process.
func TestTokenCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inventory.db")
	tests := []struct {
		args       []string
		code       int
		out, err   string
		outPattern bool
	}{
		{args: []string{"token"}, code: 2, err: "Usage"},
		{args: []string{"token", "create", "x", "--db", db}, code: 2, err: "role \"\" must be read, write or admin"},
		{args: []string{"token", "create", "--db", db, "--role", "read"}, code: 2, err: "wrong number of arguments"},
		{args: []string{"token", "create", "bad name", "--role", "read", "--db", db}, code: 1, err: "token name"},
		{args: []string{"token", "create", "ops", "--role", "admin", "--db", db}, code: 0, out: "clusto_", err: "shown only this once"},
		{args: []string{"token", "create", "ops", "--role", "read", "--db", db}, code: 1, err: "already exists"},
		{args: []string{"token", "list", "--db", db}, code: 0, out: "ops   admin"},
		{args: []string{"token", "revoke", "nobody", "--db", db}, code: 1, err: "no token named"},
		{args: []string{"token", "revoke", "ops", "--db", db}, code: 0, err: "revoked"},
		{args: []string{"token", "frobnicate", "--db", db}, code: 2, err: "unknown command"},
		{args: []string{"serve", "extra"}, code: 2, err: "unexpected argument"},
		{args: []string{"serve", "--max-body", "0"}, code: 2, err: "--max-body"},
		{args: []string{"serve", "--backup-keep", "-1"}, code: 2, err: "--backup-keep -1 must be 0 (keep every backup) or more"},
		{args: []string{"serve", "--heavy-running", "0"}, code: 2, err: "--heavy-running must be a positive whole number"},
		{args: []string{"serve", "--heavy-queue", "-3"}, code: 2, err: "--heavy-queue must be a positive whole number"},
		{args: []string{"serve", "--heavy-per-token", "0"}, code: 2, err: "--heavy-per-token must be a positive whole number"},
		{args: []string{"serve", "--heavy-wait", "0s"}, code: 2, err: "--heavy-wait must be a positive duration"},
		{args: []string{"serve", "--query-timeout", "-1s"}, code: 2, err: "--query-timeout must be a positive duration"},
		{args: []string{"serve", "--dry-run-timeout", "0s"}, code: 2, err: "--dry-run-timeout must be a positive duration"},
		{args: []string{"serve", "--max-answer", "0"}, code: 2, err: "--max-answer must be a positive number of bytes"},
		{args: []string{"serve", "--query-timeout", "soon"}, code: 2, err: "invalid argument \"soon\" for \"--query-timeout\" flag"},
		{args: []string{"serve", "--help"}, code: 0, err: "--heavy-per-token int "},
		{args: []string{"serve", "--help"}, code: 0, err: " heavy requests one token may have running or waiting; more are refused with 429 (env CLUSTO_HEAVY_PER_TOKEN) (default 4)\n"},
		{args: []string{"serve", "--help"}, code: 0, err: "--backup-dir string "},
		{args: []string{"serve", "--help"}, code: 0, err: " directory POST /api/v1/admin/backup writes backups into"},
		{args: []string{"serve", "--help"}, code: 0, err: "(default: backups beside the --db file) (env CLUSTO_BACKUP_DIR)"},
		{args: []string{"bogus"}, code: 2, err: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errOut.String())
			}
		})
	}
}

// TestBadNumericEnvironment: a numeric setting from the environment that
// is not a whole number in range stops serve before it opens anything.
func TestBadNumericEnvironment(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"CLUSTO_MAX_BODY", "0", `CLUSTO_MAX_BODY="0" must be a positive number of bytes`},
		{"CLUSTO_MAX_BODY", "4MB", `CLUSTO_MAX_BODY="4MB" must be a positive number of bytes`},
		{"CLUSTO_BACKUP_KEEP", "-1", `CLUSTO_BACKUP_KEEP="-1" must be a whole number (0 keeps every backup)`},
		{"CLUSTO_BACKUP_KEEP", "seven", `CLUSTO_BACKUP_KEEP="seven" must be a whole number (0 keeps every backup)`},
		{"CLUSTO_HEAVY_RUNNING", "0", `CLUSTO_HEAVY_RUNNING="0" must be a positive whole number`},
		{"CLUSTO_HEAVY_QUEUE", "many", `CLUSTO_HEAVY_QUEUE="many" must be a positive whole number`},
		{"CLUSTO_HEAVY_PER_TOKEN", "-1", `CLUSTO_HEAVY_PER_TOKEN="-1" must be a positive whole number`},
		{"CLUSTO_HEAVY_WAIT", "10", `CLUSTO_HEAVY_WAIT="10" must be a positive duration such as 10s or 2m`},
		{"CLUSTO_QUERY_TIMEOUT", "0s", `CLUSTO_QUERY_TIMEOUT="0s" must be a positive duration`},
		{"CLUSTO_DRY_RUN_TIMEOUT", "soon", `CLUSTO_DRY_RUN_TIMEOUT="soon" must be a positive duration`},
		{"CLUSTO_MAX_ANSWER", "64MiB", `CLUSTO_MAX_ANSWER="64MiB" must be a positive number of bytes`},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.key, tc.value)
			db := filepath.Join(t.TempDir(), "inventory.db")
			var out, errOut bytes.Buffer
			if code := run([]string{"serve", "--db", db, "--listen", "127.0.0.1:0"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tc.want)
			}
			if _, err := os.Stat(db); !os.IsNotExist(err) {
				t.Errorf("the database was created (%v)", err)
			}
		})
	}
}

// clustod token create and revoke are entered in the token audit list as
// done by clustod/USER, the operating-system user who ran them; a refused
// one is not, and the secret is nowhere in the list.
func TestTokenCommandsAreAudited(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inventory.db")
	secret, _, code := runCLI(t, "token", "create", "ops", "--role", "admin", "--db", db)
	if code != 0 {
		t.Fatalf("token create: exit %d", code)
	}
	if _, _, code := runCLI(t, "token", "create", "ops", "--role", "read", "--db", db); code != 1 {
		t.Fatalf("a second ops: exit %d", code)
	}
	if _, _, code := runCLI(t, "token", "revoke", "ops", "--db", db); code != 0 {
		t.Fatalf("token revoke: exit %d", code)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, err := st.TokenAudit(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range events {
		got = append(got, fmt.Sprintf("%s %s %s %s %q", ev.Actor, ev.Action, ev.Token, ev.Role, ev.RequestID))
		if strings.Contains(fmt.Sprint(ev), strings.TrimSpace(secret)) {
			t.Errorf("event %d holds the secret", ev.ID)
		}
	}
	actor := "clustod/" + u.Username
	if diff := cmp.Diff([]string{actor + ` create ops admin ""`, actor + ` revoke ops admin ""`}, got); diff != "" {
		t.Fatalf("audit (-want +got):\n%s", diff)
	}
}

// A serve that refuses its configuration leaves nothing behind: no
// database file (nor its log or lock file) and no port bound, whichever
// setting it refused and however late it found out.
func TestRefusedConfigurationLeavesNothing(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// An address free when picked. (Whether the refused process left it
	// listening cannot be asked of the port: the process has exited,
	// and the kernel closed its sockets; another package's test may take
	// the port meanwhile. TestMainRefusedRunLeavesNothing checks a
	// refused Run in process.)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	dir := t.TempDir()
	badDrivers := filepath.Join(dir, "drivers.json")
	os.WriteFile(badDrivers, []byte(`{"drivers": [{"name": "Bad Name", "kind": "equipment"}]}`), 0o644)
	badSeed := filepath.Join(dir, "seed.yaml")
	os.WriteFile(badSeed, []byte("entities:\n  s1: {driver: nosuchdriver}\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a listen address that is not one", []string{"--listen", "127.0.0.1:notaport"}, "--listen"},
		{"a port already taken", []string{"--listen", held.Addr().String()}, "address already in use"},
		{"no token on a non-loopback address", []string{"--listen", "0.0.0.0:0"}, "refusing to listen"},
		{"a seed that does not apply", []string{"--listen", freeAddr, "--seed", badSeed}, "nosuchdriver"},
		{"a missing seed", []string{"--listen", freeAddr, "--seed", filepath.Join(dir, "none.yaml")}, "none.yaml"},
		{"a bad drivers file", []string{"--listen", freeAddr, "--drivers", badDrivers}, "bad name"},
		{"a bad number", []string{"--listen", freeAddr, "--max-body", "0"}, "--max-body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "inventory.db")
			_, stderr, code := runCLI(t, append([]string{"serve", "--db", db}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want a refusal naming %q", code, stderr, tc.want)
			}
			for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
				if _, err := os.Stat(db + suffix); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s was left behind (%v)", filepath.Base(db+suffix), err)
				}
			}
		})
	}
}
