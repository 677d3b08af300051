package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The daemons below listen on port 0, a free port the kernel picks, and
// startDaemon reads the address bound from clustod's "serving" log line:
// no port is chosen first and then raced for.

func TestServeCreatesDatabaseAndAnswersHealthz(t *testing.T) {
	db := filepath.Join(t.TempDir(), "new.db")
	d := startDaemonEnv(t, []string{"CLUSTO_LISTEN=127.0.0.1:0"}, "--db", db) // the listen address from the environment
	// Not the default 127.0.0.1:8642: the kernel's free ports are above it.
	if _, port, err := net.SplitHostPort(strings.TrimPrefix(d.base, "http://")); err != nil || port == "8642" {
		t.Errorf("serving on %s (%v), not on the port 0 of CLUSTO_LISTEN", d.base, err)
	}
	h := d.want(d.call("GET", "/healthz", "", nil), 200)
	if h.body["status"] != "ok" {
		t.Errorf("healthz = %v", h.body)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("database not created: %v", err)
	}
	// SIGTERM shuts it down cleanly.
	if code := d.stop(); code != 0 {
		t.Errorf("clustod exited with %d after SIGTERM", code)
	}
	if !strings.Contains(d.log(), `"msg":"stopped"`) {
		t.Errorf("no stop in the log:\n%s", d.log())
	}
}

func TestServeRefusesNewerDatabase(t *testing.T) {
	bin := clustodBinary(t)
	db := filepath.Join(t.TempDir(), "inv.db")
	// Create it, then mark it as written by a future version.
	d := startDaemon(t, "--db", db, "--listen", "127.0.0.1:0")
	if code := d.stop(); code != 0 {
		t.Fatalf("clustod exited with %d after SIGTERM", code)
	}
	if err := setUserVersion(db, 999); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "serve", "--db", db, "--listen", "127.0.0.1:0").CombinedOutput()
	if err == nil {
		t.Fatalf("clustod started on a newer database:\n%s", out)
	}
	if !strings.Contains(string(out), "newer") {
		t.Errorf("error does not say the file is newer:\n%s", out)
	}
}
