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
	return tx.applyOps(ops, true)
}

func (tx *Tx) applyOps(ops []entity.Op, collect bool) ([]entity.OpResult, error) {
	if len(ops) == 0 {
		return nil, entity.Errorf(entity.KindInvalid, "the batch has no ops")
	}
	var results []entity.OpResult
	if collect {
		results = make([]entity.OpResult, 0, len(ops))
	}
	for i, op := range ops {
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
	err := run(ctx, actor, func(tx *Tx) error {
		var err error
		results, err = tx.applyOps(ops, !opts.NoResults)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
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
