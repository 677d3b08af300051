package store

import (
	"database/sql"
	"errors"

	"github.com/clusto/clusto/entity"
)

// IdempotencyLookup finds the remembered answer for (actor, key), if any
// younger than IdempotencyTTL. Run it in the same write transaction as the
// operation so that two retries cannot both miss.
func (tx *Tx) IdempotencyLookup(actor, key string) (*entity.Replay, error) {
	var r entity.Replay
	var created string
	err := tx.queryRow("SELECT request_hash, status, response, created_at FROM idempotency_keys WHERE actor = ? AND key = ?", actor, key).
		Scan(&r.RequestHash, &r.Status, &r.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, entity.Internal("read idempotency key", err)
	}
	if tx.Now().Sub(parseTime(created)) > entity.IdempotencyTTL {
		return nil, nil
	}
	return &r, nil
}

// IdempotencySave remembers the answer to a keyed request, replacing an
// expired one, and drops keys older than the TTL.
func (tx *Tx) IdempotencySave(actor, key string, r entity.Replay) error {
	if _, err := tx.exec("save idempotency key", `INSERT INTO idempotency_keys(key, actor, request_hash, status, response, created_at) VALUES (?,?,?,?,?,?)
		ON CONFLICT(actor, key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status,
		response = excluded.response, created_at = excluded.created_at`, key, actor, r.RequestHash, r.Status, r.Body, tx.now); err != nil {
		return err
	}
	_, err := tx.exec("expire idempotency keys", "DELETE FROM idempotency_keys WHERE created_at < ?", formatTime(tx.Now().Add(-entity.IdempotencyTTL)))
	return err
}
