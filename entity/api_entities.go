package entity

import (
	"bytes"
	"encoding/json"
)

// The request and answer types of entities, attributes, connections,
// lookup and history (see api.go).

// CreateRequest is the body of POST /entities.
type CreateRequest struct {
	Name   string      `json:"name"`
	Driver string      `json:"driver"`
	Attrs  []AttrInput `json:"attrs"`
}

// AttrInput is an attribute as a request gives it (an item of
// CreateRequest.Attrs, the body of POST /entities/{name}/attrs). Value
// keeps its JSON type (numbers and booleans stay numbers and booleans)
// unless Type names one. Number is a whole number or, when adding a
// value, "next" for the key's next free number; Attr reads both.
type AttrInput struct {
	Key    string          `json:"key"`
	Subkey string          `json:"subkey"`
	Number json.RawMessage `json:"number"`
	Value  json.RawMessage `json:"value"`
	Type   ValueType       `json:"type"`
}

// Attr validates the attribute and returns it; next reports a
// "number":"next", which only allowNext permits.
func (a AttrInput) Attr(allowNext bool) (attr Attr, next bool, err error) {
	if err := ValidateKey("key", a.Key); err != nil {
		return attr, false, err
	}
	if a.Subkey != "" {
		if err := ValidateKey("subkey", a.Subkey); err != nil {
			return attr, false, err
		}
	}
	attr.Key, attr.Subkey = a.Key, a.Subkey
	if n := bytes.TrimSpace(a.Number); len(n) > 0 && string(n) != "null" {
		if allowNext && string(n) == `"next"` {
			next = true
		} else {
			var num int64
			if err := json.Unmarshal(n, &num); err != nil || num < 0 {
				if allowNext {
					return attr, false, Errorf(KindInvalid, "attribute %s: number must be a whole number, 0 or more, or \"next\"", a.Key)
				}
				return attr, false, Errorf(KindInvalid, "attribute %s: number must be a whole number, 0 or more", a.Key)
			}
			attr.Number = N(num)
		}
	}
	v, err := ValueFromJSON(a.Value, a.Type)
	if err != nil {
		return attr, false, Errorf(KindInvalid, "attribute %s: %s", a.Key, err.Error())
	}
	attr.Value = v
	return attr, next, nil
}

// RenameRequest is the body of PATCH /entities/{name}: the new name.
type RenameRequest struct {
	Name string `json:"name"`
}

// Deleted is the answer of DELETE /entities/{name}.
type Deleted struct {
	Deleted string `json:"deleted"`
	Change  int64  `json:"change"`
}

// AttrsAnswer is an entity's attributes with its name and version (also
// the ETag), the answer of the attribute endpoints. Writes add what they
// added or removed.
type AttrsAnswer struct {
	Entity  string `json:"entity"`
	Version int64  `json:"version"`
	Attrs   []Attr `json:"attrs"`
	// Added is the value POST .../attrs wrote; Removed the values DELETE
	// .../attrs/{key} took.
	Added   *Attr  `json:"added,omitempty"`
	Removed []Attr `json:"removed,omitempty"`
	// Change is the X-Clusto-Change of a write's answer; 0 on reads.
	Change int64 `json:"-"`
}

// UnmarshalJSON reads the answer's attributes as Entity.UnmarshalJSON
// does.
func (a *AttrsAnswer) UnmarshalJSON(b []byte) error {
	type plain AttrsAnswer
	aux := struct {
		*plain
		Attrs   []shownAttr `json:"attrs"`
		Added   *shownAttr  `json:"added,omitempty"`
		Removed []shownAttr `json:"removed,omitempty"`
	}{plain: (*plain)(a)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	a.Attrs, a.Removed, a.Added = shownAttrs(aux.Attrs), shownAttrs(aux.Removed), (*Attr)(aux.Added)
	return nil
}

// SetAttrRequest is the body of PUT /entities/{name}/attrs/{key}: the
// values that replace the key's.
type SetAttrRequest struct {
	Values []json.RawMessage `json:"values"`
	// Subkey and Number narrow what is replaced, and the new values get
	// them; absent, every value of the key is replaced, and the new values
	// have no subkey or number.
	Subkey *string   `json:"subkey,omitempty"`
	Number *int64    `json:"number,omitempty"`
	Type   ValueType `json:"type,omitempty"`
}

// InsertRequest is the body of POST /entities/{name}/children: the child
// (or member) to put in, and for a container with units where (Position
// is the lowest unit, 1 the bottom) and how many (Height, by default the
// child's).
type InsertRequest struct {
	Child    string `json:"child"`
	Position *int64 `json:"position,omitempty"`
	Height   *int64 `json:"height,omitempty"`
}

// Cable is a link between port APort of A and port BPort of B: the body
// of POST and DELETE /links, which may leave a port out (POST takes the
// first free one of the matching type; DELETE needs A and B to share one
// link), and what their answers made or removed, which always name both.
type Cable struct {
	A     string `json:"a"`
	APort string `json:"a_port,omitempty"`
	B     string `json:"b"`
	BPort string `json:"b_port,omitempty"`
	// Type is the ports' type, which their drivers declare: in answers
	// only.
	Type string `json:"type,omitempty"`
}

// LinkAnswer is the answer of POST /links.
type LinkAnswer struct {
	Link   Cable `json:"link"`
	Change int64 `json:"change"`
}

// UnlinkAnswer is the answer of DELETE /links.
type UnlinkAnswer struct {
	Unlinked Cable `json:"unlinked"`
	Change   int64 `json:"change"`
}

// Consoles is the answer of GET /entities/{name}/console: which console
// server ports the entity's console ports are cabled to.
type Consoles struct {
	Entity   string    `json:"entity"`
	Consoles []Console `json:"consoles"`
}

// Console is one console cable.
type Console struct {
	Port          string `json:"port"`
	ConsoleServer string `json:"console_server"`
	ConsolePort   string `json:"console_port"`
	Driver        string `json:"driver"`
}

// Power is the answer of GET /entities/{name}/power: which PDU outlets the
// entity's power ports are cabled to.
type Power struct {
	Entity string   `json:"entity"`
	Power  []Outlet `json:"power"`
}

// Outlet is one power cable.
type Outlet struct {
	Port   string `json:"port"`
	PDU    string `json:"pdu"`
	Outlet string `json:"outlet"`
	Driver string `json:"driver"`
}

// Changes is a page of the change log (GET /changes, GET
// /entities/{name}/history). Next is the ?since= of the page after: the
// last change listed, or since itself when the page is empty, so that a
// poller can always send it back.
type Changes struct {
	Changes []Change `json:"changes"`
	Next    int64    `json:"next"`
}
