package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeCreatesDatabaseAndAnswersHealthz(t *testing.T) {
	bin := clustodBinary(t)
	db := filepath.Join(t.TempDir(), "new.db")
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--db", db)
	cmd.Env = append(os.Environ(), "CLUSTO_LISTEN="+addr) // the listen address from the environment
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err = http.Get("http://" + addr + "/healthz"); err == nil {
			break
		}
	}
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("clustod never answered: %v", err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["status"] != "ok" {
		t.Errorf("healthz = %d %v", resp.StatusCode, body)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("database not created: %v", err)
	}
	// SIGTERM shuts it down cleanly.
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("clustod exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("clustod did not stop after SIGTERM")
	}
	var all []string
	for l := range logs {
		all = append(all, l)
	}
	if !strings.Contains(strings.Join(all, "\n"), `"msg":"stopped"`) {
		t.Errorf("no stop in the log:\n%s", strings.Join(all, "\n"))
	}
}

func TestServeRefusesNewerDatabase(t *testing.T) {
	bin := clustodBinary(t)
	db := filepath.Join(t.TempDir(), "inv.db")
	// Create it, then mark it as written by a future version.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := freeAddr(t)
	cmd := exec.CommandContext(ctx, bin, "serve", "--db", db, "--listen", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if err := setUserVersion(db, 999); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "serve", "--db", db, "--listen", freeAddr(t)).CombinedOutput()
	if err == nil {
		t.Fatalf("clustod started on a newer database:\n%s", out)
	}
	if !strings.Contains(string(out), "newer") {
		t.Errorf("error does not say the file is newer:\n%s", out)
	}
}
