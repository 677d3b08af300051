package entity

import (
	"context"
	"database/sql"
	"errors"
)

// readSnapshot runs fn in one read-only transaction on the read pool, so that
// every query fn makes sees the same committed state. Outside a transaction
// each statement takes its own WAL snapshot, and a write committed between
// two of them would show, say, an entity's version from before the write with
// its attributes from after it.
func (s *Store) readSnapshot(ctx context.Context, fn func(q queryer) error) error {
	tx, err := s.db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Internal("begin read", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return Internal("end read", err)
	}
	return nil
}

// LastChange returns the number of the newest change the transaction sees:
// after a write in it, the number of the change that write recorded.
func (tx *Tx) LastChange() (int64, error) {
	var n sql.NullInt64
	if err := tx.queryRow("SELECT max(id) FROM changes").Scan(&n); err != nil {
		return 0, Internal("read latest change", err)
	}
	return n.Int64, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
