package entity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// DefaultActor is recorded when a write names no actor.
const DefaultActor = "anonymous"

// NewEntity is what Create needs.
type NewEntity struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	Attrs  []Attr `json:"attrs"`
}

// AttrSelector picks attribute values of one key; nil fields match any.
type AttrSelector struct {
	Key    string
	Subkey *string
	Number *int64
	Value  *string
}

// String is the selector as the API spells it: key.subkey[number]=value.
func (sel AttrSelector) String() string {
	s := sel.Key
	if sel.Subkey != nil {
		s += "." + *sel.Subkey
	}
	if sel.Number != nil {
		s += fmt.Sprintf("[%d]", *sel.Number)
	}
	if sel.Value != nil {
		s += "=" + *sel.Value
	}
	return s
}

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

// IdempotencyTTL is how long an Idempotency-Key's first answer is kept.
const IdempotencyTTL = 48 * time.Hour

// Replay is a remembered answer to a keyed request.
type Replay struct {
	RequestHash string
	Status      int
	Body        []byte
}
