package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// TestSessions: a session opened with a token acts as it, until logout,
// expiry or the token's revocation; a bad token opens none, and the id
// handed out is never what is stored.
func TestSessions(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	path := t.TempDir() + "/inv.db"
	s, err := store.Open(ctx, path, store.Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	secret, _, err := s.CreateToken(ctx, cli, "alice", entity.RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	unauthorized := func(what string, err error) {
		t.Helper()
		if entity.KindOf(err) != entity.KindUnauthorized {
			t.Errorf("%s: %v, want unauthorized", what, err)
		}
	}
	_, _, err = s.CreateSession(ctx, "clusto_nottoken", time.Hour)
	unauthorized("a session of a bad token", err)

	id, tok, err := s.CreateSession(ctx, secret, time.Hour)
	if err != nil || tok.Name != "alice" || !strings.HasPrefix(id, "clsess_") {
		t.Fatalf("session %q %+v %v", id, tok, err)
	}
	got, err := s.Session(ctx, id)
	if err != nil || got.Name != "alice" || got.Role != entity.RoleWrite {
		t.Fatalf("session acts as %+v %v, want alice (write)", got, err)
	}
	_, err = s.Session(ctx, id+"x")
	unauthorized("another id", err)
	handEditCheck(t, path, id)

	if err := s.EndSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = s.Session(ctx, id)
	unauthorized("after logout", err)

	id, _, err = s.CreateSession(ctx, secret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, cli, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Session(ctx, id)
	unauthorized("after the token's revocation", err)

	bob, _, err := s.CreateToken(ctx, cli, "bob", entity.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err = s.CreateSession(ctx, bob, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, id); err != nil {
		t.Fatalf("fresh session: %v", err)
	}
	c.t = c.t.Add(time.Minute)
	_, err = s.Session(ctx, id)
	unauthorized("after expiry", err)
}

// handEditCheck: the database holds the session id's hash, not the id.
func handEditCheck(t *testing.T, path, id string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored []byte
	if err := db.QueryRow("SELECT hash FROM ui_sessions").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(id))
	if !bytes.Equal(stored, want[:]) {
		t.Errorf("stored %x, want the id's SHA-256 %x", stored, want)
	}
}
