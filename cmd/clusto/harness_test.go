package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests build the real clusto and clustod, start clustod on a
// temporary database loaded with examples/demo.yaml, and run clusto as a
// user would, checking stdout, stderr and the exit code.

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the output seen")

// bins holds the binaries built once for the whole run.
var bins struct {
	dir, clusto, clustod string
}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "clusto-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	bins.clusto = filepath.Join(dir, "clusto")
	bins.clustod = filepath.Join(dir, "clustod")
	for _, b := range []struct{ out, pkg string }{{bins.clusto, "."}, {bins.clustod, "../clustod"}} {
		if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// downAddr is a loopback address that refuses connections for the rest of
// the test: a socket bound to it without SO_REUSEADDR and never listening
// keeps the port from anyone else, and a connection to it is refused.
func downAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// server is a running clustod.
type server struct {
	url, db string
}

// startServer starts clustod on a new database loaded with the demo
// inventory (or empty, when seed is false); tokens are made before it
// starts, as name=role pairs, and their secrets returned.
func startServer(t *testing.T, seed bool, tokens ...string) (*server, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "clusto.db")
	secrets := map[string]string{}
	for _, nr := range tokens {
		name, role, _ := strings.Cut(nr, "=")
		out, err := exec.Command(bins.clustod, "token", "create", name, "--role", role, "--db", db).Output()
		if err != nil {
			t.Fatalf("clustod token create %s: %v", name, err)
		}
		secrets[name] = strings.TrimSpace(string(out))
	}
	// Port 0: clustod binds a free port and logs the address it bound in
	// its "serving" line, which is read from its stderr.
	args := []string{"serve", "--db", db, "--listen", "127.0.0.1:0"}
	if seed {
		args = append(args, "--seed", "../../examples/demo.yaml")
	}
	cmd := exec.Command(bins.clustod, args...)
	logPath := filepath.Join(dir, "clustod.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = logf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan string, 1)
	copied := make(chan struct{}) // closed when clustod's stderr ends
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" && line.Addr != "" {
				select {
				case serving <- line.Addr:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-copied
		cmd.Wait()
		logf.Close()
	})
	var addr string
	select {
	case addr = <-serving:
	case <-copied:
		log, _ := os.ReadFile(logPath)
		t.Fatalf("clustod exited before serving:\n%s", log)
	case <-time.After(30 * time.Second):
		log, _ := os.ReadFile(logPath)
		t.Fatalf("clustod did not log its address in 30s:\n%s", log)
	}
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("clustod did not answer on %s: %v\n%s", addr, err, log)
		}
	}
	return &server{url: url, db: db}, secrets
}

// result is one run of clusto.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

// runner runs clusto with a fixed environment.
type runner struct {
	t   *testing.T
	env []string
	// dir is the working directory ("": the test's).
	dir string
}

// newRunner runs clusto against srv (nil: no CLUSTO_URL), with a home
// directory of its own and no colour or width from the test's terminal.
func newRunner(t *testing.T, srv *server, env ...string) *runner {
	home := t.TempDir()
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	if srv != nil {
		base = append(base, "CLUSTO_URL="+srv.url)
	}
	return &runner{t: t, env: append(base, env...)}
}

// on is the runner reporting to t (a subtest).
func (r *runner) on(t *testing.T) *runner { return &runner{t: t, env: r.env, dir: r.dir} }

func (r *runner) with(env ...string) *runner {
	return &runner{t: r.t, env: append(append([]string(nil), r.env...), env...), dir: r.dir}
}

// in is the runner working in dir, for commands that write files.
func (r *runner) in(dir string) *runner { return &runner{t: r.t, env: r.env, dir: dir} }

func (r *runner) run(args ...string) result {
	return r.runIn("", args...)
}

func (r *runner) runIn(stdin string, args ...string) result {
	r.t.Helper()
	cmd := exec.Command(bins.clusto, args...)
	cmd.Env = r.env
	cmd.Dir = r.dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			r.t.Fatalf("clusto %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{args: args, stdout: out.String(), stderr: errb.String(), code: code}
}

// ok runs clusto and fails the test unless it exits 0 with nothing on
// stderr.
func (r *runner) ok(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 || res.stderr != "" {
		r.t.Fatalf("clusto %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// expect checks the exit code and that stderr holds each of want.
func (res result) expect(t *testing.T, code int, want ...string) {
	t.Helper()
	if res.code != code {
		t.Errorf("clusto %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(res.args, " "), res.code, code, res.stdout, res.stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("clusto %s: stderr lacks %q:\n%s", strings.Join(res.args, " "), w, res.stderr)
		}
	}
}

var (
	tableTime = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ`)
	jsonTime  = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"`)
	loopback  = regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
	goVersion = regexp.MustCompile(`go1\.[0-9.]+`)
)

// normalize replaces what changes from run to run (times, ports) with
// fixed text of the same width, so that tables stay aligned.
func normalize(s string) string {
	s = tableTime.ReplaceAllString(s, "2026-11-22 10:00:00Z")
	s = jsonTime.ReplaceAllString(s, `"2026-11-22T10:00:00Z"`)
	s = loopback.ReplaceAllString(s, "http://127.0.0.1:8642")
	return goVersion.ReplaceAllString(s, "go1.x")
}

// transcript is a run as a person sees it in a terminal.
func (res result) transcript() string {
	var b strings.Builder
	b.WriteString("$ clusto")
	for _, a := range res.args {
		if a == "" || strings.ContainsAny(a, " '\"*()|&;<>$\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		b.WriteString(" " + a)
	}
	b.WriteString("\n" + res.stdout)
	if res.stderr != "" {
		b.WriteString(res.stderr)
	}
	if res.code != 0 {
		fmt.Fprintf(&b, "[exit %d]\n", res.code)
	}
	return normalize(b.String())
}

// golden compares got with testdata/NAME.golden (or writes it, with
// -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// session runs commands in order and compares their transcript with one
// golden file.
type session struct {
	t  *testing.T
	r  *runner
	tr strings.Builder
}

func (s *session) run(code int, args ...string) result {
	s.t.Helper()
	res := s.r.run(args...)
	if res.code != code {
		s.t.Errorf("clusto %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	s.tr.WriteString(res.transcript() + "\n")
	return res
}

func (s *session) check(name string) {
	s.t.Helper()
	golden(s.t, name, strings.TrimSuffix(s.tr.String(), "\n"))
}
