package entity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
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

// Caller is who creates or revokes a token, as the token audit list
// records it.
type Caller struct {
	// Actor is the name of the token the request was made with
	// (DefaultActor without one), or "clustod/USER" for the clustod
	// command line run by the operating-system user USER. Token names
	// hold no '/', so the two cannot be confused.
	Actor string
	// RequestID is the API request's id, under which the access log has
	// it; empty on the command line.
	RequestID string
}

// The actions of the token audit list.
const (
	TokenCreated = "create"
	TokenRevoked = "revoke"
)

// TokenEvent is one entry of the token audit list: a token made or
// revoked. It holds the token's name and role, never its secret or hash.
type TokenEvent struct {
	// ID numbers the events in order; it is the paging key.
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Token     string    `json:"token"`
	Role      Role      `json:"role"`
	RequestID string    `json:"request_id,omitempty"`
}

// CreateToken makes a token with a fresh random secret (32 bytes from the
// system's CSPRNG) and stores only its SHA-256 hash. The secret is returned
// here once and can never be read back. The creation is entered in the
// token audit list, by by, in the same transaction.
func (s *Store) CreateToken(ctx context.Context, by Caller, name string, role Role) (string, Token, error) {
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
	err := s.tokenWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "INSERT INTO tokens(name, role, hash, created_at) VALUES (?,?,?,?) ON CONFLICT(name) DO NOTHING",
			name, string(role), hashToken(secret), formatTime(tok.CreatedAt))
		if err != nil {
			return Internal("store token", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Internal("store token", err)
		} else if n == 0 {
			return Errorf(KindConflict, "a token named %q already exists; revoke it first to replace it", name)
		}
		return auditToken(ctx, tx, by, TokenCreated, tok.Name, tok.Role, tok.CreatedAt)
	})
	if err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

// tokenWrite runs fn in one write transaction, so that a token and its
// audit entry are stored together or not at all.
func (s *Store) tokenWrite(ctx context.Context, fn func(*sql.Tx) error) error {
	// On the single writer, like every write; token writes record no
	// change (they are not inventory), so the rules have nothing to check.
	return s.Update(ctx, "", func(tx *Tx) error { return fn(tx.tx) })
}

// auditToken enters one event in the token audit list.
func auditToken(ctx context.Context, tx *sql.Tx, by Caller, action, name string, role Role, at time.Time) error {
	if by.Actor == "" {
		by.Actor = DefaultActor
	}
	var reqID any
	if by.RequestID != "" {
		reqID = by.RequestID
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO token_audit(at, actor, action, token, role, request_id) VALUES (?,?,?,?,?,?)",
		formatTime(at), by.Actor, action, name, string(role), reqID)
	return Internal("record token audit", err)
}

// TokenAudit lists the token audit list's events after event since,
// oldest first: at most limit of them (100 when limit is 0 or less,
// never more than 1000).
func (s *Store) TokenAudit(ctx context.Context, since int64, limit int) ([]TokenEvent, error) {
	limit = clampLimit(limit)
	rows, err := s.db.Read.QueryContext(ctx, "SELECT id, at, actor, action, token, role, coalesce(request_id, '') FROM token_audit WHERE id > ? ORDER BY id LIMIT ?", since, limit)
	if err != nil {
		return nil, Internal("read token audit", err)
	}
	defer rows.Close()
	out := []TokenEvent{}
	for rows.Next() {
		var ev TokenEvent
		var at, role string
		if err := rows.Scan(&ev.ID, &at, &ev.Actor, &ev.Action, &ev.Token, &role, &ev.RequestID); err != nil {
			return nil, Internal("read token audit", err)
		}
		ev.Time, ev.Role = parseTime(at), Role(role)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, Internal("read token audit", err)
	}
	return out, nil
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

// RevokeToken deletes the token named name; requests with it fail from now
// on. The revocation is entered in the token audit list, by by, in the same
// transaction.
func (s *Store) RevokeToken(ctx context.Context, by Caller, name string) error {
	if err := ValidateTokenName(name); err != nil {
		return err
	}
	return s.tokenWrite(ctx, func(tx *sql.Tx) error {
		var role string
		err := tx.QueryRowContext(ctx, "DELETE FROM tokens WHERE name = ? RETURNING role", name).Scan(&role)
		if isNoRows(err) {
			return Errorf(KindNotFound, "no token named %q", name)
		}
		if err != nil {
			return Internal("revoke token", err)
		}
		return auditToken(ctx, tx, by, TokenRevoked, name, Role(role), s.now())
	})
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
