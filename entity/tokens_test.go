package entity_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clusto/clusto/entity"
)

func asError(err error, e **entity.Error) bool { return errors.As(err, e) }

func TestTokens(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if has, err := s.HasTokens(ctx); err != nil || has {
		t.Fatalf("new store has tokens: %v %v", has, err)
	}
	secret, tok, err := s.CreateToken(ctx, "alice", entity.RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, entity.TokenPrefix) || len(secret) != len(entity.TokenPrefix)+43 || tok.Name != "alice" {
		t.Fatalf("token %q %+v", secret, tok)
	}
	other, _, err := s.CreateToken(ctx, "bob", entity.RoleRead)
	if err != nil || other == secret {
		t.Fatalf("second token %q: %v", other, err)
	}
	got, err := s.Authenticate(ctx, secret)
	if err != nil || got.Name != "alice" || got.Role != entity.RoleWrite {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	// Only the hash is stored: the secret appears nowhere in the row.
	var name, hash []byte
	if err := s.DB().Read.QueryRowContext(ctx, "SELECT name, hash FROM tokens WHERE name = 'alice'").Scan(&name, &hash); err != nil {
		t.Fatal(err)
	}
	if len(hash) != 32 || bytes.Contains(hash, []byte(secret)) {
		t.Fatalf("stored hash %x", hash)
	}

	_, _, err = s.CreateToken(ctx, "alice", entity.RoleAdmin)
	wantKind(t, err, entity.KindConflict)
	for _, bad := range []string{"", "has space", "-dash-first", "anonymous", strings.Repeat("a", 65)} {
		_, _, err := s.CreateToken(ctx, bad, entity.RoleRead)
		wantKind(t, err, entity.KindInvalid)
	}
	_, _, err = s.CreateToken(ctx, "carol", entity.Role("root"))
	wantKind(t, err, entity.KindInvalid)
	for _, bad := range []string{"", "nonsense", secret + "x", entity.TokenPrefix + "AAAA"} {
		_, err := s.Authenticate(ctx, bad)
		wantKind(t, err, entity.KindUnauthorized)
	}
	toks, err := s.Tokens(ctx)
	if err != nil || len(toks) != 2 || toks[0].Name != "alice" || toks[1].Name != "bob" {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
	if err := s.RevokeToken(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(ctx, secret)
	wantKind(t, err, entity.KindUnauthorized)
	wantKind(t, s.RevokeToken(ctx, "alice"), entity.KindNotFound)
	// The name is free again.
	if _, _, err := s.CreateToken(ctx, "alice", entity.RoleRead); err != nil {
		t.Fatal(err)
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
	write(t, s, func(tx *entity.Tx) error {
		if err := tx.CreateQuiet(entity.NewEntity{Name: "a", Driver: "server"}); err != nil {
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
