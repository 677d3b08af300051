package store

import (
	"context"

	"github.com/clusto/clusto/entity"
)

// MergedAt is Merged as of change at (0: now): the entity's own attributes,
// then those of its physical parent and its groups, then theirs, nearest
// first, each entity once, each attribute's From naming its owner. It reads
// one consistent snapshot.
func (s *Store) MergedAt(ctx context.Context, name string, at int64) ([]entity.Attr, error) {
	if at < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change number %d must not be negative", at)
	}
	var out []entity.Attr
	err := s.readTx(ctx, func(q Reader) error {
		r, err := s.rowByName(ctx, q, name, at)
		if err != nil {
			return err
		}
		out, err = s.merged(ctx, q, r, at)
		return err
	})
	return out, err
}

func (s *Store) merged(ctx context.Context, q Reader, r *entRow, at int64) ([]entity.Attr, error) {
	type node struct {
		id   int64
		name string
	}
	cvis, cargs := Visible("c", at)
	evis, eargs := Visible("e", at)
	containers := "SELECT e.id, e.name FROM connections c JOIN entities e ON e.id = c.a AND " + evis +
		" WHERE c.b = ? AND c.type IN ('contains','member') AND " + cvis + " ORDER BY c.type, e.name"
	seen := map[int64]bool{r.id: true}
	level := []node{{r.id, r.name}}
	out := []entity.Attr{}
	for len(level) > 0 {
		var next []node
		for _, n := range level {
			attrs, err := s.attrsOf(ctx, q, n.id, at, "", nil)
			if err != nil {
				return nil, err
			}
			for _, a := range attrs {
				a.From = n.name
				out = append(out, a)
			}
			args := append(append(append([]any{}, eargs...), n.id), cargs...)
			rows, err := q.QueryContext(ctx, containers, args...)
			if err != nil {
				return nil, entity.Internal("read containers", err)
			}
			for rows.Next() {
				var p node
				if err := rows.Scan(&p.id, &p.name); err != nil {
					rows.Close()
					return nil, entity.Internal("read containers", err)
				}
				if !seen[p.id] {
					seen[p.id] = true
					next = append(next, p)
				}
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return nil, entity.Internal("read containers", err)
			}
		}
		level = next
	}
	return out, nil
}

// GetMergedAt reads the entity as GetAt does, with its attributes replaced
// by the merged view of MergedAt, from one consistent snapshot.
func (s *Store) GetMergedAt(ctx context.Context, name string, at int64) (*entity.Entity, error) {
	if at < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change number %d must not be negative", at)
	}
	var e *entity.Entity
	err := s.readTx(ctx, func(q Reader) error {
		var err error
		if e, err = s.load(ctx, q, name, at); err != nil {
			return err
		}
		r, err := s.rowByName(ctx, q, name, at)
		if err != nil {
			return err
		}
		e.Attrs, err = s.merged(ctx, q, r, at)
		return err
	})
	return e, err
}
