package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/clusto/clusto/entity"
)

// ApplyOps runs ops in order inside tx and returns, per op, the changes it
// recorded and what it handed out. The first failing op stops the batch
// with an error naming it (Details["op"] is its index); the caller's
// transaction then rolls everything back.
func (tx *Tx) ApplyOps(ops []entity.Op) ([]entity.OpResult, error) {
	if len(ops) == 0 {
		return nil, errNoOps()
	}
	return tx.applyOps(ops, true, 0)
}

func errNoOps() error { return entity.Errorf(entity.KindInvalid, "the batch has no ops") }

// applyOps runs ops, numbering them from base in errors and results.
func (tx *Tx) applyOps(ops []entity.Op, collect bool, base int) ([]entity.OpResult, error) {
	var results []entity.OpResult
	if collect {
		results = make([]entity.OpResult, 0, len(ops))
	}
	for j, op := range ops {
		i := base + j
		var before int64
		if collect {
			if err := tx.queryRow("SELECT coalesce(max(id), 0) FROM changes").Scan(&before); err != nil {
				return nil, entity.Internal("batch", err)
			}
		}
		res, err := tx.ApplyOp(op)
		if err != nil {
			var e *entity.Error
			if !errors.As(err, &e) {
				return nil, err
			}
			out := *e
			out.Message = fmt.Sprintf("op %d (%s): %s", i, op.Op, e.Message)
			out.Err = e
			out.Details = map[string]any{}
			for k, v := range e.Details {
				out.Details[k] = v
			}
			return nil, out.With("op", i)
		}
		if !collect {
			continue
		}
		rows, err := tx.query("SELECT "+changeCols+" FROM changes WHERE id > ? ORDER BY id", before)
		if err != nil {
			return nil, entity.Internal("batch", err)
		}
		changes, err := scanChanges(rows)
		if err != nil {
			return nil, err
		}
		results = append(results, entity.OpResult{Index: i, Op: op.Op, Changes: changes, Result: res})
	}
	return results, nil
}

// ApplyOp runs one op and returns what it handed out, if anything.
func (tx *Tx) ApplyOp(op entity.Op) (any, error) {
	switch op.Op {
	case "create":
		if err := need(op, map[string]string{"name": op.Name, "driver": op.Driver}); err != nil {
			return nil, err
		}
		return nil, tx.Create(entity.NewEntity{Name: op.Name, Driver: op.Driver, Attrs: op.Attrs})
	case "delete":
		if err := need(op, map[string]string{"name": op.Name}); err != nil {
			return nil, err
		}
		return nil, tx.Delete(op.Name, op.Cascade)
	case "rename":
		if err := need(op, map[string]string{"name": op.Name, "new_name": op.NewName}); err != nil {
			return nil, err
		}
		return nil, tx.Rename(op.Name, op.NewName)
	case "attr_add":
		if err := need(op, map[string]string{"name": op.Name, "key": op.Key}); err != nil {
			return nil, err
		}
		v, err := opValue(op, op.Value)
		if err != nil {
			return nil, err
		}
		a := entity.Attr{Key: op.Key, Number: op.Number, Value: v}
		if op.Subkey != nil {
			a.Subkey = *op.Subkey
		}
		if op.AutoNumber {
			return tx.AddNumberedAttr(op.Name, a)
		}
		return tx.AddAttr(op.Name, a)
	case "attr_set":
		if err := need(op, map[string]string{"name": op.Name, "key": op.Key}); err != nil {
			return nil, err
		}
		vals := make([]entity.Value, len(op.Values))
		for i, raw := range op.Values {
			v, err := opValue(op, raw)
			if err != nil {
				return nil, fmt.Errorf("value #%d: %w", i+1, err)
			}
			vals[i] = v
		}
		return tx.SetAttr(op.Name, entity.AttrSelector{Key: op.Key, Subkey: op.Subkey, Number: op.Number}, vals)
	case "attr_del":
		if err := need(op, map[string]string{"name": op.Name, "key": op.Key}); err != nil {
			return nil, err
		}
		sel := entity.AttrSelector{Key: op.Key, Subkey: op.Subkey, Number: op.Number}
		if len(op.Value) > 0 {
			v, err := opValue(op, op.Value)
			if err != nil {
				return nil, err
			}
			sel.Value = &v.Text
		}
		_, err := tx.DelAttr(op.Name, sel)
		return nil, err
	case "insert":
		if err := need(op, map[string]string{"parent": op.Parent, "child": op.Child}); err != nil {
			return nil, err
		}
		_, err := tx.Insert(op.Parent, op.Child, entity.Placement{Position: op.Position, Height: op.Height})
		return nil, err
	case "remove":
		if err := need(op, map[string]string{"parent": op.Parent, "child": op.Child}); err != nil {
			return nil, err
		}
		return nil, tx.Remove(op.Parent, op.Child)
	case "link":
		if err := need(op, map[string]string{"a": op.A, "a_port": op.APort, "b": op.B, "b_port": op.BPort}); err != nil {
			return nil, err
		}
		return nil, tx.Connect(entity.Endpoint{Name: op.A, Port: op.APort}, entity.Endpoint{Name: op.B, Port: op.BPort})
	case "unlink":
		if err := need(op, map[string]string{"a": op.A, "b": op.B}); err != nil {
			return nil, err
		}
		return nil, tx.Disconnect(entity.Endpoint{Name: op.A, Port: op.APort}, entity.Endpoint{Name: op.B, Port: op.BPort})
	case "allocate_ip":
		if err := need(op, map[string]string{"block": op.Block, "entity": op.Entity}); err != nil {
			return nil, err
		}
		return tx.AllocateIP(entity.IPRequest{Block: op.Block, Entity: op.Entity, Count: op.Count, Address: op.Address, Interface: op.Interface})
	case "release_ip":
		if err := need(op, map[string]string{"block": op.Block, "address": op.Address}); err != nil {
			return nil, err
		}
		return tx.ReleaseIP(op.Block, op.Address)
	case "allocate_ru":
		if err := need(op, map[string]string{"rack": op.Rack, "entity": op.Entity}); err != nil {
			return nil, err
		}
		return tx.AllocateRackUnits(entity.RackRequest{Rack: op.Rack, Entity: op.Entity, Position: op.Position, Height: op.Height})
	case "allocate_name":
		if err := need(op, map[string]string{"manager": op.Manager, "driver": op.Driver}); err != nil {
			return nil, err
		}
		return tx.AllocateNames(entity.NameRequest{Manager: op.Manager, Driver: op.Driver, Count: op.Count, Attrs: op.Attrs})
	case "":
		return nil, entity.Errorf(entity.KindInvalid, "op is missing")
	}
	return nil, entity.Errorf(entity.KindInvalid, "unknown op %q (create, delete, rename, attr_add, attr_set, attr_del, insert, remove, link, unlink, allocate_ip, release_ip, allocate_ru, allocate_name)", op.Op)
}

// BatchOptions say how Batch runs ops.
type BatchOptions struct {
	// DryRun computes the same results and changes as a dry run
	// (Store.DryRun), which stores nothing.
	DryRun bool
	// NoResults skips reading back what each op did, for inventory files
	// of hundreds of thousands of ops: Batch then returns no results.
	NoResults bool
}

// Batch applies ops in one transaction (see Tx.ApplyOps).
func (s *Store) Batch(ctx context.Context, actor string, ops []entity.Op, opts BatchOptions) ([]entity.OpResult, error) {
	run := s.Update
	if opts.DryRun {
		run = s.DryRun
	}
	var results []entity.OpResult
	if len(ops) == 0 {
		return nil, errNoOps()
	}
	err := run(ctx, actor, func(tx *Tx) error {
		var err error
		results, err = tx.applyOps(ops, !opts.NoResults, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// OpStream is the transaction of a streamed batch (Store.BatchStream), to
// which ops are handed over a slice at a time.
type OpStream struct {
	tx      *Tx
	collect bool
	applied int
}

// Apply runs ops after those already applied in the stream and, unless
// the stream was opened with NoResults, returns what each did (indexes
// count from the stream's first op). The first failing op stops it with
// an error naming it (Details["op"] is its index in the whole stream);
// the caller must then return that error from fill, which rolls the whole
// stream back. Applying no ops does nothing.
func (st *OpStream) Apply(ops []entity.Op) ([]entity.OpResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	res, err := st.tx.applyOps(ops, st.collect, st.applied)
	st.applied += len(ops)
	return res, err
}

// Applied counts the ops applied so far.
func (st *OpStream) Applied() int { return st.applied }

// Context is the context of the stream's transaction: a dry run's attempt
// is canceled through it when a write preempts it.
func (st *OpStream) Context() context.Context { return st.tx.ctx }

// BatchStream is Batch for more ops than should be held at once (an
// inventory file of hundreds of thousands of ops): fill hands them over
// in order, a slice at a time, through OpStream.Apply, all inside one
// write transaction, so that all of them apply or none do, exactly as
// one Batch of the same ops in the same order would. What SQLite writes
// stays in the transaction's pages on disk, not in Go memory; only the
// transaction's own bookkeeping (the entities it touched) grows with it.
//
// The transaction commits when fill returns nil (a dry run rolls back)
// and rolls back when it returns an error, which BatchStream returns. A
// stream of no ops commits nothing and is not an error. As with DryRun,
// fill may run more than once for a dry run (each attempt in a new
// transaction), so it must produce its ops afresh each time. fill may
// read the store (Store.View) while it runs; such reads see what was
// committed before the stream began (nothing commits while it holds the
// writer), not what it has applied.
func (s *Store) BatchStream(ctx context.Context, actor string, opts BatchOptions, fill func(*OpStream) error) error {
	run := s.Update
	if opts.DryRun {
		run = s.DryRun
	}
	return run(ctx, actor, func(tx *Tx) error {
		return fill(&OpStream{tx: tx, collect: !opts.NoResults})
	})
}

// opValue decodes a value of op in the type the op names.
func opValue(op entity.Op, raw json.RawMessage) (entity.Value, error) {
	return entity.ValueFromJSON(raw, op.Type)
}

// need refuses op when one of fields, by its name in the API, is empty.
func need(op entity.Op, fields map[string]string) error {
	for name, v := range fields {
		if v == "" {
			return entity.Errorf(entity.KindInvalid, "%s needs %q", op.Op, name)
		}
	}
	return nil
}
