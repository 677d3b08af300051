package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"strings"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/schema"
)

// Web UI sessions. A browser gives a token once (the login form) and holds
// a session id instead, in a cookie; the id is random, only its SHA-256 is
// stored, and the session acts as its token: the same name in the change
// log, the same role. It ends at its expiry, at logout, or when the token
// is revoked (the table refers to the token, ON DELETE CASCADE).

// sessionPrefix marks a session id, as TokenPrefix marks a token.
const sessionPrefix = "clsess_"

// CreateSession checks the token secret and opens a session of it that
// expires after ttl. It returns the session id (to be sent to the browser
// and never stored) and the token it acts as.
func (s *Store) CreateSession(ctx context.Context, secret string, ttl time.Duration) (string, entity.Token, error) {
	tok, err := s.Authenticate(ctx, secret)
	if err != nil {
		return "", entity.Token{}, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", entity.Token{}, entity.Internal("make a session id", err)
	}
	id := sessionPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	err = s.tokenWrite(ctx, func(tx *sql.Tx) error {
		// Expired sessions are dropped as new ones are made.
		if _, err := tx.ExecContext(ctx, "DELETE FROM ui_sessions WHERE expires_at < ?", formatTime(now)); err != nil {
			return entity.Internal("open session", err)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO ui_sessions(hash, token, created_at, expires_at) VALUES (?, ?, ?, ?)",
			hashToken(id), tok.Name, formatTime(now), formatTime(now.Add(ttl)))
		if schema.IsForeignKeyViolation(err) {
			return entity.Errorf(entity.KindUnauthorized, "the token is not valid (unknown or revoked)")
		}
		return entity.Internal("open session", err)
	})
	if err != nil {
		return "", entity.Token{}, err
	}
	return id, tok, nil
}

// Session returns the token a live session acts as; unauthorized when
// there is no such session, it expired, or its token was revoked.
func (s *Store) Session(ctx context.Context, id string) (entity.Token, error) {
	if !strings.HasPrefix(id, sessionPrefix) || len(id) > 128 {
		return entity.Token{}, entity.Errorf(entity.KindUnauthorized, "the session is not a clusto session")
	}
	var t entity.Token
	var role, created, expires string
	err := s.queryRow(ctx, `SELECT t.name, t.role, t.created_at, u.expires_at FROM ui_sessions u JOIN tokens t ON t.name = u.token WHERE u.hash = ?`,
		hashToken(id)).Scan(&t.Name, &role, &created, &expires)
	if isNoRows(err) {
		return entity.Token{}, entity.Errorf(entity.KindUnauthorized, "the session has ended (logged out, or its token was revoked)")
	}
	if err != nil {
		return entity.Token{}, entity.Internal("check session", err)
	}
	if !s.now().Before(parseTime(expires)) {
		return entity.Token{}, entity.Errorf(entity.KindUnauthorized, "the session expired at %s", expires)
	}
	t.Role, t.CreatedAt = entity.Role(role), parseTime(created)
	return t, nil
}

// EndSession ends a session (logout). Ending one that is not there is not
// an error: the browser's cookie is stale either way.
func (s *Store) EndSession(ctx context.Context, id string) error {
	return s.tokenWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM ui_sessions WHERE hash = ?", hashToken(id))
		return entity.Internal("end session", err)
	})
}
