package entity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Op is one write in a batch. Which fields apply depends on Op:
//
//	create        name, driver, attrs
//	delete        name, cascade
//	rename        name, new_name
//	attr_add      name, key, subkey, number, auto_number, value, type
//	attr_set      name, key, subkey, number, values, type
//	attr_del      name, key, subkey, number, value
//	insert        parent, child, position, height
//	remove        parent, child
//	link, unlink  a, a_port, b, b_port
//	allocate_ip   block, entity, count, address, interface
//	release_ip    block, address
//	allocate_ru   rack, entity, position, height
//	allocate_name manager, driver, count, attrs
type Op struct {
	Op         string            `json:"op"`
	Name       string            `json:"name,omitempty"`
	Driver     string            `json:"driver,omitempty"`
	Attrs      []Attr            `json:"attrs,omitempty"`
	NewName    string            `json:"new_name,omitempty"`
	Cascade    bool              `json:"cascade,omitempty"`
	Key        string            `json:"key,omitempty"`
	Subkey     *string           `json:"subkey,omitempty"`
	Number     *int64            `json:"number,omitempty"`
	AutoNumber bool              `json:"auto_number,omitempty"`
	Value      json.RawMessage   `json:"value,omitempty"`
	Values     []json.RawMessage `json:"values,omitempty"`
	Type       ValueType         `json:"type,omitempty"`
	Parent     string            `json:"parent,omitempty"`
	Child      string            `json:"child,omitempty"`
	Position   *int64            `json:"position,omitempty"`
	Height     *int64            `json:"height,omitempty"`
	A          string            `json:"a,omitempty"`
	APort      string            `json:"a_port,omitempty"`
	B          string            `json:"b,omitempty"`
	BPort      string            `json:"b_port,omitempty"`
	Block      string            `json:"block,omitempty"`
	Entity     string            `json:"entity,omitempty"`
	Count      int               `json:"count,omitempty"`
	Address    string            `json:"address,omitempty"`
	Interface  string            `json:"interface,omitempty"`
	Rack       string            `json:"rack,omitempty"`
	Manager    string            `json:"manager,omitempty"`
}

// OpResult is what one op of a batch did: the changes it recorded and,
// for allocations, what it handed out.
type OpResult struct {
	Index   int      `json:"index"`
	Op      string   `json:"op"`
	Changes []Change `json:"changes"`
	Result  any      `json:"result,omitempty"`
}

// MaxBatchOps bounds one batch sent over the API (inventory files applied
// by the server or clustod import are not bounded by it).
const MaxBatchOps = 10000

// DecodeOps reads a JSON list of ops, refusing unknown fields.
func DecodeOps(raw []byte) ([]Op, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var ops []Op
	if err := dec.Decode(&ops); err != nil {
		return nil, Errorf(KindInvalid, "ops: %v", err)
	}
	return ops, nil
}

// ApplyOps runs ops in order inside tx and returns, per op, the changes it
// recorded and what it handed out. The first failing op stops the batch
// with an error naming it (Details["op"] is its index); the caller's
// transaction then rolls everything back.
func (tx *Tx) ApplyOps(ops []Op) ([]OpResult, error) {
	return tx.applyOps(ops, true)
}

// ApplyOpsQuiet is ApplyOps without the per-op results: large inventory
// files apply without reading every change back.
func (tx *Tx) ApplyOpsQuiet(ops []Op) error {
	_, err := tx.applyOps(ops, false)
	return err
}

func (tx *Tx) applyOps(ops []Op, collect bool) ([]OpResult, error) {
	if len(ops) == 0 {
		return nil, Errorf(KindInvalid, "the batch has no ops")
	}
	var results []OpResult
	if collect {
		results = make([]OpResult, 0, len(ops))
	}
	for i, op := range ops {
		var before int64
		if collect {
			if err := tx.queryRow("SELECT coalesce(max(id), 0) FROM changes").Scan(&before); err != nil {
				return nil, Internal("batch", err)
			}
		}
		res, err := tx.ApplyOp(op)
		if err != nil {
			var e *Error
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
			return nil, Internal("batch", err)
		}
		changes, err := scanChanges(rows)
		if err != nil {
			return nil, err
		}
		results = append(results, OpResult{Index: i, Op: op.Op, Changes: changes, Result: res})
	}
	return results, nil
}

func (op Op) value(raw json.RawMessage) (Value, error) {
	return ValueFromJSON(raw, op.Type)
}

func (op Op) need(fields map[string]string) error {
	for name, v := range fields {
		if v == "" {
			return Errorf(KindInvalid, "%s needs %q", op.Op, name)
		}
	}
	return nil
}

// ApplyOp runs one op and returns what it handed out, if anything.
func (tx *Tx) ApplyOp(op Op) (any, error) {
	switch op.Op {
	case "create":
		if err := op.need(map[string]string{"name": op.Name, "driver": op.Driver}); err != nil {
			return nil, err
		}
		return nil, tx.create(NewEntity{Name: op.Name, Driver: op.Driver, Attrs: op.Attrs})
	case "delete":
		if err := op.need(map[string]string{"name": op.Name}); err != nil {
			return nil, err
		}
		return nil, tx.Delete(op.Name, op.Cascade)
	case "rename":
		if err := op.need(map[string]string{"name": op.Name, "new_name": op.NewName}); err != nil {
			return nil, err
		}
		return nil, tx.Rename(op.Name, op.NewName)
	case "attr_add":
		if err := op.need(map[string]string{"name": op.Name, "key": op.Key}); err != nil {
			return nil, err
		}
		v, err := op.value(op.Value)
		if err != nil {
			return nil, err
		}
		a := Attr{Key: op.Key, Number: op.Number, Value: v}
		if op.Subkey != nil {
			a.Subkey = *op.Subkey
		}
		if op.AutoNumber {
			return tx.AddNumberedAttr(op.Name, a)
		}
		return tx.AddAttr(op.Name, a)
	case "attr_set":
		if err := op.need(map[string]string{"name": op.Name, "key": op.Key}); err != nil {
			return nil, err
		}
		vals := make([]Value, len(op.Values))
		for i, raw := range op.Values {
			v, err := op.value(raw)
			if err != nil {
				return nil, fmt.Errorf("value #%d: %w", i+1, err)
			}
			vals[i] = v
		}
		return tx.SetAttr(op.Name, AttrSelector{Key: op.Key, Subkey: op.Subkey, Number: op.Number}, vals)
	case "attr_del":
		if err := op.need(map[string]string{"name": op.Name, "key": op.Key}); err != nil {
			return nil, err
		}
		sel := AttrSelector{Key: op.Key, Subkey: op.Subkey, Number: op.Number}
		if len(op.Value) > 0 {
			v, err := op.value(op.Value)
			if err != nil {
				return nil, err
			}
			sel.Value = &v.Text
		}
		_, err := tx.DelAttr(op.Name, sel)
		return nil, err
	case "insert":
		if err := op.need(map[string]string{"parent": op.Parent, "child": op.Child}); err != nil {
			return nil, err
		}
		_, err := tx.Insert(op.Parent, op.Child, Placement{Position: op.Position, Height: op.Height})
		return nil, err
	case "remove":
		if err := op.need(map[string]string{"parent": op.Parent, "child": op.Child}); err != nil {
			return nil, err
		}
		return nil, tx.Remove(op.Parent, op.Child)
	case "link":
		if err := op.need(map[string]string{"a": op.A, "a_port": op.APort, "b": op.B, "b_port": op.BPort}); err != nil {
			return nil, err
		}
		return nil, tx.Connect(Endpoint{op.A, op.APort}, Endpoint{op.B, op.BPort})
	case "unlink":
		if err := op.need(map[string]string{"a": op.A, "b": op.B}); err != nil {
			return nil, err
		}
		return nil, tx.Disconnect(Endpoint{op.A, op.APort}, Endpoint{op.B, op.BPort})
	case "allocate_ip":
		if err := op.need(map[string]string{"block": op.Block, "entity": op.Entity}); err != nil {
			return nil, err
		}
		return tx.AllocateIP(IPRequest{Block: op.Block, Entity: op.Entity, Count: op.Count, Address: op.Address, Interface: op.Interface})
	case "release_ip":
		if err := op.need(map[string]string{"block": op.Block, "address": op.Address}); err != nil {
			return nil, err
		}
		return tx.ReleaseIP(op.Block, op.Address)
	case "allocate_ru":
		if err := op.need(map[string]string{"rack": op.Rack, "entity": op.Entity}); err != nil {
			return nil, err
		}
		return tx.AllocateRackUnits(RackRequest{Rack: op.Rack, Entity: op.Entity, Position: op.Position, Height: op.Height})
	case "allocate_name":
		if err := op.need(map[string]string{"manager": op.Manager, "driver": op.Driver}); err != nil {
			return nil, err
		}
		return tx.AllocateNames(NameRequest{Manager: op.Manager, Driver: op.Driver, Count: op.Count, Attrs: op.Attrs})
	case "":
		return nil, Errorf(KindInvalid, "op is missing")
	}
	return nil, Errorf(KindInvalid, "unknown op %q (create, delete, rename, attr_add, attr_set, attr_del, insert, remove, link, unlink, allocate_ip, release_ip, allocate_ru, allocate_name)", op.Op)
}

// Batch applies ops in one transaction; with dryRun it computes the same
// results and changes as a dry run (Store.DryRun), which stores nothing.
func (s *Store) Batch(ctx context.Context, actor string, ops []Op, dryRun bool) ([]OpResult, error) {
	return s.batch(ctx, actor, ops, dryRun, true)
}

// BatchQuiet is Batch without collecting per-op results, for inventory
// files of hundreds of thousands of ops.
func (s *Store) BatchQuiet(ctx context.Context, actor string, ops []Op, dryRun bool) error {
	_, err := s.batch(ctx, actor, ops, dryRun, false)
	return err
}

func (s *Store) batch(ctx context.Context, actor string, ops []Op, dryRun, collect bool) ([]OpResult, error) {
	run := s.Update
	if dryRun {
		run = s.DryRun
	}
	var results []OpResult
	err := run(ctx, actor, func(tx *Tx) error {
		var err error
		results, err = tx.applyOps(ops, collect)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}
