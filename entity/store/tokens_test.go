package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/schema"
)

func asError(err error, e **entity.Error) bool { return errors.As(err, e) }

// cli is who the tests create and revoke tokens as.
var cli = entity.Caller{Actor: "clustod/test"}

func TestTokens(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if has, err := s.HasTokens(ctx); err != nil || has {
		t.Fatalf("new store has tokens: %v %v", has, err)
	}
	secret, tok, err := s.CreateToken(ctx, cli, "alice", entity.RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, entity.TokenPrefix) || len(secret) != len(entity.TokenPrefix)+43 || tok.Name != "alice" {
		t.Fatalf("token %q %+v", secret, tok)
	}
	other, _, err := s.CreateToken(ctx, cli, "bob", entity.RoleRead)
	if err != nil || other == secret {
		t.Fatalf("second token %q: %v", other, err)
	}
	got, err := s.Authenticate(ctx, secret)
	if err != nil || got.Name != "alice" || got.Role != entity.RoleWrite {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	// Only the hash is stored: the secret appears nowhere in the row.
	var name, hash []byte
	if err := s.Reader().QueryRowContext(ctx, "SELECT name, hash FROM tokens WHERE name = 'alice'").Scan(&name, &hash); err != nil {
		t.Fatal(err)
	}
	if len(hash) != 32 || bytes.Contains(hash, []byte(secret)) {
		t.Fatalf("stored hash %x", hash)
	}

	_, _, err = s.CreateToken(ctx, cli, "alice", entity.RoleAdmin)
	wantKind(t, err, entity.KindConflict)
	for _, bad := range []string{"", "has space", "-dash-first", "anonymous", strings.Repeat("a", 65)} {
		_, _, err := s.CreateToken(ctx, cli, bad, entity.RoleRead)
		wantKind(t, err, entity.KindInvalid)
	}
	_, _, err = s.CreateToken(ctx, cli, "carol", entity.Role("root"))
	wantKind(t, err, entity.KindInvalid)
	for _, bad := range []string{"", "nonsense", secret + "x", entity.TokenPrefix + "AAAA"} {
		_, err := s.Authenticate(ctx, bad)
		wantKind(t, err, entity.KindUnauthorized)
	}
	toks, err := s.Tokens(ctx)
	if err != nil || len(toks) != 2 || toks[0].Name != "alice" || toks[1].Name != "bob" {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
	if err := s.RevokeToken(ctx, cli, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(ctx, secret)
	wantKind(t, err, entity.KindUnauthorized)
	wantKind(t, s.RevokeToken(ctx, cli, "alice"), entity.KindNotFound)
	// The name is free again.
	if _, _, err := s.CreateToken(ctx, cli, "alice", entity.RoleRead); err != nil {
		t.Fatal(err)
	}
}

// Every create and revoke is in the audit list, with who did it and the
// role, in order; refused ones are not; and neither the secret nor its
// hash is anywhere in the list.
func TestTokenAudit(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	api := entity.Caller{Actor: "alice", RequestID: "req-1"}
	var secrets []string
	steps := []struct {
		by     entity.Caller
		revoke bool
		name   string
		role   entity.Role
		fails  entity.ErrorKind
	}{
		{by: entity.Caller{}, name: "alice", role: entity.RoleAdmin},
		{by: api, name: "robot", role: entity.RoleRead},
		{by: api, name: "robot", role: entity.RoleWrite, fails: entity.KindConflict},
		{by: api, name: "bad name", role: entity.RoleRead, fails: entity.KindInvalid},
		{by: cli, revoke: true, name: "robot"},
		{by: cli, revoke: true, name: "robot", fails: entity.KindNotFound},
		{by: cli, name: "robot", role: entity.RoleWrite},
	}
	for i, st := range steps {
		var err error
		if st.revoke {
			err = s.RevokeToken(ctx, st.by, st.name)
		} else {
			var secret string
			secret, _, err = s.CreateToken(ctx, st.by, st.name, st.role)
			if err == nil {
				secrets = append(secrets, secret)
			}
		}
		if st.fails != "" {
			wantKind(t, err, st.fails)
		} else if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got, err := s.TokenAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].Time.IsZero() || (i > 0 && got[i].Time.Before(got[i-1].Time)) {
			t.Errorf("event %d has time %v after %v", got[i].ID, got[i].Time, got[i-1].Time)
		}
		got[i].Time = time.Time{}
	}
	want := []entity.TokenEvent{
		{ID: 1, Actor: "anonymous", Action: "create", Token: "alice", Role: entity.RoleAdmin},
		{ID: 2, Actor: "alice", Action: "create", Token: "robot", Role: entity.RoleRead, RequestID: "req-1"},
		{ID: 3, Actor: "clustod/test", Action: "revoke", Token: "robot", Role: entity.RoleRead},
		{ID: 4, Actor: "clustod/test", Action: "create", Token: "robot", Role: entity.RoleWrite},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("audit (-want +got):\n%s", diff)
	}
	// Paging: after event 2, one at a time.
	page, err := s.TokenAudit(ctx, 2, 1)
	if err != nil || len(page) != 1 || page[0].ID != 3 {
		t.Fatalf("page after 2: %+v %v", page, err)
	}
	// The secrets and their hashes are nowhere in the table, in any column.
	rows, err := s.Reader().QueryContext(ctx, "SELECT * FROM token_audit")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			cell := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				cell = string(b)
			}
			for _, sec := range secrets {
				h := sha256.Sum256([]byte(sec))
				if strings.Contains(cell, sec) || strings.Contains(cell, string(h[:])) || strings.Contains(cell, hex.EncodeToString(h[:])) {
					t.Errorf("the audit list holds a secret or its hash: %q", cell)
				}
			}
		}
	}
}

// A database made before the audit list gets an entry for each token it
// has, as made when it was made, by nobody known.
func TestTokenAuditMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:4] {
		if _, err := raw.Exec(m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	for _, q := range []string{
		"PRAGMA user_version = 4",
		"INSERT INTO tokens(name, role, hash, created_at) VALUES ('ops', 'admin', x'00', '2026-01-02T00:00:00Z'), ('bot', 'read', x'01', '2026-01-01T00:00:00Z')",
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.TokenAudit(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	want := []entity.TokenEvent{
		{ID: 1, Time: day(1), Actor: "(not recorded)", Action: "create", Token: "bot", Role: entity.RoleRead},
		{ID: 2, Time: day(2), Actor: "(not recorded)", Action: "create", Token: "ops", Role: entity.RoleAdmin},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("audit after migrating (-want +got):\n%s", diff)
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		have, need entity.Role
		ok         bool
	}{
		{entity.RoleRead, entity.RoleRead, true},
		{entity.RoleRead, entity.RoleWrite, false},
		{entity.RoleRead, entity.RoleAdmin, false},
		{entity.RoleWrite, entity.RoleRead, true},
		{entity.RoleWrite, entity.RoleWrite, true},
		{entity.RoleWrite, entity.RoleAdmin, false},
		{entity.RoleAdmin, entity.RoleAdmin, true},
		{entity.Role(""), entity.RoleRead, false},
		{entity.RoleAdmin, entity.Role("bogus"), false},
	}
	for _, tc := range tests {
		if got := tc.have.Allows(tc.need); got != tc.ok {
			t.Errorf("%q allows %q = %v, want %v", tc.have, tc.need, got, tc.ok)
		}
	}
	if _, err := entity.ParseRole("superuser"); entity.KindOf(err) != entity.KindInvalid {
		t.Fatalf("ParseRole: %v", err)
	}
}

func TestLastChange(t *testing.T) {
	s := newStore(t)
	var inside int64
	write(t, s, func(tx *store.Tx) error {
		if err := tx.Create(entity.NewEntity{Name: "a", Driver: "server"}); err != nil {
			return err
		}
		var err error
		inside, err = tx.LastChange()
		return err
	})
	after, _ := s.LatestChange(context.Background())
	if inside != 1 || after != 1 {
		t.Fatalf("inside %d, after %d; want 1", inside, after)
	}
}

// TestTokenCacheNeverOutlivesAChange: verified tokens are answered from
// the cache while nothing changes, and a token revoked, or the first
// token created, through another handle on the file (connections of its
// own, as another process has: clustod token revoke on the server's host)
// takes effect at the very next check; writes through the same store (the
// API's revocation), and writes of anything else, too.
func TestTokenCacheNeverOutlivesAChange(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "inv.db")
	server, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	other, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mustHave := func(want bool) {
		t.Helper()
		if has, err := server.HasTokens(ctx); err != nil || has != want {
			t.Fatalf("HasTokens: %v %v, want %v", has, err, want)
		}
	}
	mustHave(false)
	mustHave(false) // from the cache
	secret, _, err := other.CreateToken(ctx, cli, "alice", entity.RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	mustHave(true)
	hits := server.TokenCacheHits()
	for range 3 {
		if tok, err := server.Authenticate(ctx, secret); err != nil || tok.Name != "alice" {
			t.Fatalf("authenticate alice: %+v %v", tok, err)
		}
	}
	if server.TokenCacheHits()-hits < 2 {
		t.Fatalf("%d of 3 checks answered from the cache: the cache is not used, and this test proves nothing", server.TokenCacheHits()-hits)
	}
	var e *entity.Error
	for _, revoke := range []func() error{
		func() error { return other.RevokeToken(ctx, cli, "alice") },
		func() error { return server.RevokeToken(ctx, cli, "bob") },
	} {
		if _, err := server.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if err := revoke(); err != nil {
			t.Fatal(err)
		}
		if _, err := server.Authenticate(ctx, secret); !asError(err, &e) || e.Kind != entity.KindUnauthorized {
			t.Fatalf("revoked: %v, want unauthorized at once", err)
		}
		// The next round: bob, made through the other handle.
		if secret, _, err = other.CreateToken(ctx, cli, "bob", entity.RoleRead); err != nil {
			t.Fatal(err)
		}
	}
	mustHave(true)
	if err := other.RevokeToken(ctx, cli, "bob"); err != nil {
		t.Fatal(err)
	}
	mustHave(false)
}
