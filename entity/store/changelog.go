package store

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"

	"github.com/clusto/clusto/entity"
)

// ChangeFilter selects changes of the change log for ChangeLog. Every
// field is optional; the ones given must all hold.
type ChangeFilter struct {
	// Entity keeps the changes about the entity of that name (as subject
	// or as the other side of a connection), as History does: a deleted
	// or renamed entity is found by the last entity that had the name.
	Entity string
	// Actor and Op keep the changes by that actor, of that operation.
	Actor, Op string
	// Before keeps the changes numbered below it (0: no bound), the cursor
	// of a page newest first; After those above it.
	Before, After int64
	// Limit is the most changes listed (1-1000, default 100).
	Limit int
}

// ChangeLog lists the changes f selects, newest first. The statement is
// one of a few texts made of the store's own fragments; every value f
// holds is bound, never spliced.
func (s *Store) ChangeLog(ctx context.Context, f ChangeFilter) ([]entity.Change, error) {
	if f.Before < 0 || f.After < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change numbers must not be negative")
	}
	before := f.Before
	if before == 0 {
		before = 1<<63 - 1
	}
	// The conditions are the store's own text: each filter given adds its
	// fixed condition, so that the statement can read newest first from
	// the index of what it filters by (changes_by_actor, changes_by_op,
	// changes_by_entity and changes_by_peer).
	cond, args := " WHERE id < ? AND id > ?", []any{before, f.After}
	if f.Actor != "" {
		cond, args = cond+" AND actor = ?", append(args, f.Actor)
	}
	if f.Op != "" {
		cond, args = cond+" AND op = ?", append(args, f.Op)
	}
	query := "SELECT " + changeCols + " FROM changes" + cond + " ORDER BY id DESC LIMIT ?"
	if f.Entity != "" {
		id, err := s.historyID(ctx, f.Entity)
		if err != nil {
			return nil, err
		}
		query = "SELECT " + changeCols + " FROM changes" + cond + ` AND id IN (
			SELECT id FROM changes WHERE entity_id = ? AND id < ? AND id > ?
			UNION ALL SELECT id FROM changes WHERE peer_id = ? AND id < ? AND id > ?) ORDER BY id DESC LIMIT ?`
		args = append(args, id, before, f.After, id, before, f.After)
	}
	rows, err := s.db.read.QueryContext(ctx, query, append(args, clampLimit(f.Limit))...)
	if err != nil {
		return nil, entity.Internal("read changes", err)
	}
	return scanChanges(rows)
}

// historyID is the id of the last entity named name, current or not: the
// entity whose history that name finds.
func (s *Store) historyID(ctx context.Context, name string) (int64, error) {
	if err := entity.ValidateName(name); err != nil {
		return 0, err
	}
	var id int64
	err := s.db.read.QueryRowContext(ctx, "SELECT id FROM entities WHERE name = ? ORDER BY since DESC LIMIT 1", name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, entity.Errorf(entity.KindNotFound, "no entity was ever named %q", name)
	}
	if err != nil {
		return 0, entity.Internal("look up entity", err)
	}
	return id, nil
}

// VersionEnd is the change that ended version of the entity named name
// (now): the first change of the write that made its next version. A
// write against version can show what happened since by listing the
// entity's changes from there (ChangeLog with After: end-1). ok is false
// when the entity never had that version or is still at it.
func (s *Store) VersionEnd(ctx context.Context, name string, version int64) (end int64, ok bool, err error) {
	r, err := s.rowByName(ctx, s.db.read, name, 0)
	if err != nil {
		return 0, false, err
	}
	var until sql.NullInt64
	err = s.db.read.QueryRowContext(ctx, "SELECT until FROM entities WHERE id = ? AND version = ? ORDER BY since DESC LIMIT 1", r.id, version).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !until.Valid) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, entity.Internal("look up version", err)
	}
	return until.Int64, true, nil
}

// CheckAt refuses a change number that is not one yet: at must be 0 (now)
// or a change that has happened.
func (s *Store) CheckAt(ctx context.Context, at int64) error {
	if at < 0 {
		return entity.Errorf(entity.KindInvalid, "change number %d must not be negative", at)
	}
	if at == 0 {
		return nil
	}
	latest, err := s.LatestChange(ctx)
	if err != nil {
		return err
	}
	if at > latest {
		return entity.Errorf(entity.KindInvalid, "change %d has not happened yet; the latest change is %d", at, latest).With("latest", latest)
	}
	return nil
}

// AllocationsAt lists the addresses the entity named name held just after
// change at (0: now), in address order, from one snapshot.
func (s *Store) AllocationsAt(ctx context.Context, name string, at int64) ([]entity.Allocation, error) {
	if at < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change number %d must not be negative", at)
	}
	var out []entity.Allocation
	err := s.readTx(ctx, func(q Reader) error {
		r, err := s.rowByName(ctx, q, name, at)
		if err != nil {
			return err
		}
		out, err = allocationsOf(ctx, q, r, at)
		return err
	})
	return out, err
}

// allocationsOf lists the addresses r holds as of change at (0: now).
func allocationsOf(ctx context.Context, q Reader, r *entRow, at int64) ([]entity.Allocation, error) {
	ivis, iargs := Visible("i", at)
	bvis, bargs := Visible("b", at)
	rows, err := q.QueryContext(ctx, `SELECT i.address, b.name, i.interface FROM ip_allocations i JOIN entities b ON b.id = i.block_id AND `+bvis+`
		WHERE i.entity_id = ? AND `+ivis+` ORDER BY i.address`, append(append(bargs, r.id), iargs...)...)
	if err != nil {
		return nil, entity.Internal("list allocations", err)
	}
	defer rows.Close()
	out := []entity.Allocation{}
	for rows.Next() {
		var raw []byte
		a := entity.Allocation{Entity: r.name}
		if err := rows.Scan(&raw, &a.Block, &a.Interface); err != nil {
			return nil, entity.Internal("list allocations", err)
		}
		var a16 [16]byte
		copy(a16[:], raw)
		a.Address = netip.AddrFrom16(a16).Unmap().String()
		out = append(out, a)
	}
	return out, rows.Err()
}
