package entity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"time"
)

// Role is what an API token may do. Each role can do what the ones before
// it can: read reads, write also changes the inventory, admin also manages
// tokens and drivers.
type Role string

// The roles, weakest first.
const (
	RoleRead  Role = "read"
	RoleWrite Role = "write"
	RoleAdmin Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a token of role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.Valid() && need.Valid() && r.rank() >= need.rank() }

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", Errorf(KindInvalid, "role %q must be read, write or admin", s)
	}
	return r, nil
}

// Token is an API token as listed: never its secret.
type Token struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// TokenPrefix starts every token, so that a leaked one is recognisable.
const TokenPrefix = "clusto_"

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// ValidateTokenName checks a token name: it is recorded as the actor of every
// change made with the token, so it is short and plain: a letter or digit,
// then letters, digits, '_', '.', '@' or '-', at most 64 characters.
func ValidateTokenName(name string) error {
	if !tokenNameRE.MatchString(name) {
		if name == "" {
			return Errorf(KindInvalid, "token name is empty")
		}
		return Errorf(KindInvalid, "token name %q must start with a letter or digit and hold only letters, digits, '_', '.', '@' or '-' (at most 64)", name)
	}
	if name == DefaultActor {
		return Errorf(KindInvalid, "token name %q is reserved for unauthenticated writes", name)
	}
	return nil
}

func hashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateToken makes a token with a fresh random secret (32 bytes from the
// system's CSPRNG) and stores only its SHA-256 hash. The secret is returned
// here once and can never be read back.
func (s *Store) CreateToken(ctx context.Context, name string, role Role) (string, Token, error) {
	if err := ValidateTokenName(name); err != nil {
		return "", Token{}, err
	}
	if !role.Valid() {
		return "", Token{}, Errorf(KindInvalid, "role %q must be read, write or admin", role)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", Token{}, Internal("make token", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(buf)
	tok := Token{Name: name, Role: role, CreatedAt: parseTime(formatTime(s.now()))}
	defer s.gate.enter(ctx)() // a real write: it preempts a dry run (dryrun.go)
	res, err := s.db.Write.ExecContext(ctx, "INSERT INTO tokens(name, role, hash, created_at) VALUES (?,?,?,?) ON CONFLICT(name) DO NOTHING",
		name, string(role), hashToken(secret), formatTime(tok.CreatedAt))
	if err != nil {
		return "", Token{}, Internal("store token", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", Token{}, Internal("store token", err)
	} else if n == 0 {
		return "", Token{}, Errorf(KindConflict, "a token named %q already exists; revoke it first to replace it", name)
	}
	return secret, tok, nil
}

// Tokens lists the tokens by name.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.Read.QueryContext(ctx, "SELECT name, role, created_at FROM tokens ORDER BY name")
	if err != nil {
		return nil, Internal("list tokens", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var role, created string
		if err := rows.Scan(&t.Name, &role, &created); err != nil {
			return nil, Internal("list tokens", err)
		}
		t.Role, t.CreatedAt = Role(role), parseTime(created)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, Internal("list tokens", err)
	}
	return out, nil
}

// RevokeToken deletes the token named name; requests with it fail from now on.
func (s *Store) RevokeToken(ctx context.Context, name string) error {
	if err := ValidateTokenName(name); err != nil {
		return err
	}
	defer s.gate.enter(ctx)() // a real write: it preempts a dry run (dryrun.go)
	res, err := s.db.Write.ExecContext(ctx, "DELETE FROM tokens WHERE name = ?", name)
	if err != nil {
		return Internal("revoke token", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Internal("revoke token", err)
	} else if n == 0 {
		return Errorf(KindNotFound, "no token named %q", name)
	}
	return nil
}

// HasTokens reports whether any token exists.
func (s *Store) HasTokens(ctx context.Context) (bool, error) {
	var n int
	err := s.queryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM tokens LIMIT 1)").Scan(&n)
	if err != nil {
		return false, Internal("read tokens", err)
	}
	return n > 0, nil
}

// Authenticate finds the token whose secret is given; unauthorized when
// there is none. The lookup is by hash, so the comparison never touches
// the secret itself.
func (s *Store) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 256 {
		return Token{}, Errorf(KindUnauthorized, "the token is not a clusto token")
	}
	var t Token
	var role, created string
	err := s.queryRow(ctx, "SELECT name, role, created_at FROM tokens WHERE hash = ?", hashToken(secret)).Scan(&t.Name, &role, &created)
	if isNoRows(err) {
		return Token{}, Errorf(KindUnauthorized, "the token is not valid (unknown or revoked)")
	}
	if err != nil {
		return Token{}, Internal("check token", err)
	}
	t.Role, t.CreatedAt = Role(role), parseTime(created)
	return t, nil
}
