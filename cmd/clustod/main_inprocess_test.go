package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMainServesInProcess runs the serve path as clustod runs it (flags,
// database, lock, listener, shutdown) inside the test, with no
// subprocess: the entity created through the API is there after Close
// and a second Main on the same file (the lock released) serves it.
func TestMainServesInProcess(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inv.db")
	ctx := context.Background()
	start := func() *Main {
		t.Helper()
		m := NewMain(io.Discard)
		if err := m.ParseFlags([]string{"--db", db, "--listen", "127.0.0.1:0"}, io.Discard); err != nil {
			t.Fatalf("ParseFlags: %v", err)
		}
		if err := m.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		return m
	}
	m := start()
	base := "http://" + m.Addr().String()
	hr, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Status, Version string }
	err = json.NewDecoder(hr.Body).Decode(&health)
	hr.Body.Close()
	if err != nil || health.Status != "ok" || health.Version != version {
		t.Errorf("healthz = %+v (%v), want ok and version %q", health, err, version)
	}
	resp, err := http.Post(base+"/api/v1/entities", "application/json", strings.NewReader(`{"name":"s1","driver":"server"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %s", resp.Status)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after Close")
	}

	m = start()
	defer m.Close()
	resp, err = http.Get("http://" + m.Addr().String() + "/api/v1/entities/s1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Name, Driver string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(struct{ Name, Driver string }{"s1", "server"}, e); diff != "" {
		t.Errorf("s1 after a restart (-want +got):\n%s", diff)
	}
}

// TestMainParseFlagsRefusesBeforeTouchingAnything: configuration mistakes
// are errors from ParseFlags, which opens and creates nothing.
func TestMainParseFlagsRefusesBeforeTouchingAnything(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inv.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--db", db, "--listen", "nowhere:port"}, `--listen "nowhere:port"`},
		{[]string{"--db", db, "--backup-dir", dir}, "--backup-dir"},
		{[]string{"--db", db, "--max-answer", "0"}, "--max-answer must be a positive number of bytes"},
		{[]string{"--db", db, "stray"}, `unexpected argument "stray"`},
	} {
		err := NewMain(io.Discard).ParseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	var usage bytes.Buffer
	if err := NewMain(io.Discard).ParseFlags([]string{"--no-such-flag"}, &usage); !errors.Is(err, errUsage) || !strings.Contains(usage.String(), "unknown flag: --no-such-flag") {
		t.Errorf("an unknown flag: %v, usage %q", err, usage.String())
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ParseFlags made %s: %v", db, err)
	}
}

// TestMainRefusedRunLeavesNothing: a Run refused after the database was
// opened (no token, a non-loopback address) removes the database and the
// lock file it created, and Close after it is harmless.
func TestMainRefusedRunLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inv.db")
	m := NewMain(io.Discard)
	if err := m.ParseFlags([]string{"--db", db, "--listen", "0.0.0.0:0"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "without authentication") {
		t.Fatalf("Run = %v, want the refusal", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close after a refused Run: %v", err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("a refused Run left %v", left)
	}
}
