package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"strings"
	"time"

	"github.com/clusto/clusto/entity"
)

func hashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateToken makes a token with a fresh random secret (32 bytes from the
// system's CSPRNG) and stores only its SHA-256 hash. The secret is returned
// here once and can never be read back. The creation is entered in the
// token audit list, by by, in the same transaction.
func (s *Store) CreateToken(ctx context.Context, by entity.Caller, name string, role entity.Role) (string, entity.Token, error) {
	if err := entity.ValidateTokenName(name); err != nil {
		return "", entity.Token{}, err
	}
	if !role.Valid() {
		return "", entity.Token{}, entity.Errorf(entity.KindInvalid, "role %q must be read, write or admin", role)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", entity.Token{}, entity.Internal("make token", err)
	}
	secret := entity.TokenPrefix + base64.RawURLEncoding.EncodeToString(buf)
	tok := entity.Token{Name: name, Role: role, CreatedAt: parseTime(formatTime(s.now()))}
	err := s.tokenWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "INSERT INTO tokens(name, role, hash, created_at) VALUES (?,?,?,?) ON CONFLICT(name) DO NOTHING",
			name, string(role), hashToken(secret), formatTime(tok.CreatedAt))
		if err != nil {
			return entity.Internal("store token", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return entity.Internal("store token", err)
		} else if n == 0 {
			return entity.Errorf(entity.KindConflict, "a token named %q already exists; revoke it first to replace it", name)
		}
		return auditToken(ctx, tx, by, entity.TokenCreated, tok.Name, tok.Role, tok.CreatedAt)
	})
	if err != nil {
		return "", entity.Token{}, err
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
func auditToken(ctx context.Context, tx *sql.Tx, by entity.Caller, action, name string, role entity.Role, at time.Time) error {
	if by.Actor == "" {
		by.Actor = entity.DefaultActor
	}
	var reqID any
	if by.RequestID != "" {
		reqID = by.RequestID
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO token_audit(at, actor, action, token, role, request_id) VALUES (?,?,?,?,?,?)",
		formatTime(at), by.Actor, action, name, string(role), reqID)
	return entity.Internal("record token audit", err)
}

// TokenAudit lists the token audit list's events after event since,
// oldest first: at most limit of them (100 when limit is 0 or less,
// never more than 1000).
func (s *Store) TokenAudit(ctx context.Context, since int64, limit int) ([]entity.TokenEvent, error) {
	limit = clampLimit(limit)
	rows, err := s.db.read.QueryContext(ctx, "SELECT id, at, actor, action, token, role, coalesce(request_id, '') FROM token_audit WHERE id > ? ORDER BY id LIMIT ?", since, limit)
	if err != nil {
		return nil, entity.Internal("read token audit", err)
	}
	defer rows.Close()
	out := []entity.TokenEvent{}
	for rows.Next() {
		var ev entity.TokenEvent
		var at, role string
		if err := rows.Scan(&ev.ID, &at, &ev.Actor, &ev.Action, &ev.Token, &role, &ev.RequestID); err != nil {
			return nil, entity.Internal("read token audit", err)
		}
		ev.Time, ev.Role = parseTime(at), entity.Role(role)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read token audit", err)
	}
	return out, nil
}

// Tokens lists the tokens by name.
func (s *Store) Tokens(ctx context.Context) ([]entity.Token, error) {
	rows, err := s.db.read.QueryContext(ctx, "SELECT name, role, created_at FROM tokens ORDER BY name")
	if err != nil {
		return nil, entity.Internal("list tokens", err)
	}
	defer rows.Close()
	out := []entity.Token{}
	for rows.Next() {
		var t entity.Token
		var role, created string
		if err := rows.Scan(&t.Name, &role, &created); err != nil {
			return nil, entity.Internal("list tokens", err)
		}
		t.Role, t.CreatedAt = entity.Role(role), parseTime(created)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("list tokens", err)
	}
	return out, nil
}

// RevokeToken deletes the token named name; requests with it fail from now
// on. The revocation is entered in the token audit list, by by, in the same
// transaction.
func (s *Store) RevokeToken(ctx context.Context, by entity.Caller, name string) error {
	if err := entity.ValidateTokenName(name); err != nil {
		return err
	}
	return s.tokenWrite(ctx, func(tx *sql.Tx) error {
		var role string
		err := tx.QueryRowContext(ctx, "DELETE FROM tokens WHERE name = ? RETURNING role", name).Scan(&role)
		if isNoRows(err) {
			return entity.Errorf(entity.KindNotFound, "no token named %q", name)
		}
		if err != nil {
			return entity.Internal("revoke token", err)
		}
		return auditToken(ctx, tx, by, entity.TokenRevoked, name, entity.Role(role), s.now())
	})
}

// HasTokens reports whether any token exists.
func (s *Store) HasTokens(ctx context.Context) (bool, error) {
	gen, cached := s.tokens.check()
	if cached {
		if has, ok := s.tokens.hasTokens(gen); ok {
			return has, nil
		}
	}
	var n int
	err := s.queryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM tokens LIMIT 1)").Scan(&n)
	if err != nil {
		return false, entity.Internal("read tokens", err)
	}
	if cached {
		s.tokens.putHasTokens(gen, n > 0)
	}
	return n > 0, nil
}

// Authenticate finds the token whose secret is given; unauthorized when
// there is none. The lookup is by hash, so the comparison never touches
// the secret itself.
func (s *Store) Authenticate(ctx context.Context, secret string) (entity.Token, error) {
	if !strings.HasPrefix(secret, entity.TokenPrefix) || len(secret) > 256 {
		return entity.Token{}, entity.Errorf(entity.KindUnauthorized, "the token is not a clusto token")
	}
	hash := hashToken(secret)
	// Tokens verified since the file last changed need no read
	// (tokenCache).
	gen, cached := s.tokens.check()
	if cached {
		if t, ok := s.tokens.token(gen, hash); ok {
			return t, nil
		}
	}
	var t entity.Token
	var role, created string
	err := s.queryRow(ctx, "SELECT name, role, created_at FROM tokens WHERE hash = ?", hash).Scan(&t.Name, &role, &created)
	if isNoRows(err) {
		return entity.Token{}, entity.Errorf(entity.KindUnauthorized, "the token is not valid (unknown or revoked)")
	}
	if err != nil {
		return entity.Token{}, entity.Internal("check token", err)
	}
	t.Role, t.CreatedAt = entity.Role(role), parseTime(created)
	if cached {
		s.tokens.putToken(gen, hash, t)
	}
	return t, nil
}
