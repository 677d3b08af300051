package client

import (
	"encoding/json"

	"github.com/clusto/clusto/entity"
)

// The API's request and answer types are package entity's (entity/api*.go),
// which the server encodes and decodes too; the names below keep the
// client's. What this file defines itself is the client's own: an entity
// with the change a write recorded, and requests built from Go values
// rather than the raw JSON the server reads.
type (
	Attr     = entity.Attr
	Relation = entity.Relation
	Link     = entity.Link
	// Attrs is an entity's attributes, as the attribute endpoints answer;
	// Change is the change a write recorded (0 on reads).
	Attrs   = entity.AttrsAnswer
	Deleted = entity.Deleted
	Cable   = entity.Cable

	Location = entity.Location
	Consoles = entity.Consoles
	Power    = entity.Power

	Change  = entity.Change
	Changes = entity.Changes

	Health     = entity.Health
	Whoami     = entity.Whoami
	Token      = entity.Token
	NewToken   = entity.NewToken
	TokenEvent = entity.TokenEvent
	TokenAudit = entity.TokenAudit
	// Driver is a driver with its ports spelt out in PortList.
	Driver = entity.DriverView

	Query       = entity.QueryRequest
	Results     = entity.Results
	Explanation = entity.Explanation
	Export      = entity.Export

	IPRequest    = entity.IPAllocateRequest
	IPAllocation = entity.Allocation
	IPBlock      = entity.BlockStatus
	RackRequest  = entity.RackAllocateRequest
	Elevation    = entity.Elevation

	Op          = entity.Op
	BatchResult = entity.BatchAnswer
	File        = entity.FileRequest
	Plan        = entity.Plan
	Applied     = entity.PlanAnswer
)

// Entity is an entity as the API shows it, with the change a write
// recorded.
type Entity struct {
	entity.Entity
	// Change is the number of the change a write recorded (from
	// X-Clusto-Change), on an entity a write answered with; 0 on reads.
	Change int64 `json:"-"`
}

// AttrInput is an attribute value to write. Value is any JSON-encodable
// value (a json.RawMessage is sent as it is); Type, when set, chooses the
// stored type (string, int, bool, time, ip, json, ref). It is sent as an
// entity.AttrInput.
type AttrInput struct {
	Key    string
	Subkey string
	// Number sets the attribute's number; NextNumber asks for the key's
	// next free number instead (adding only).
	Number     *int64
	NextNumber bool
	Value      any
	Type       string
}

// MarshalJSON writes the API's form: "number" is an integer or "next".
func (a AttrInput) MarshalJSON() ([]byte, error) {
	out := struct {
		Key    string `json:"key"`
		Subkey string `json:"subkey,omitempty"`
		Number any    `json:"number,omitempty"`
		Value  any    `json:"value"`
		Type   string `json:"type,omitempty"`
	}{Key: a.Key, Subkey: a.Subkey, Value: a.Value, Type: a.Type}
	switch {
	case a.NextNumber:
		out.Number = "next"
	case a.Number != nil:
		out.Number = *a.Number
	}
	return json.Marshal(out)
}

// NewEntity is an entity to create, sent as an entity.CreateRequest.
type NewEntity struct {
	Name   string      `json:"name"`
	Driver string      `json:"driver"`
	Attrs  []AttrInput `json:"attrs,omitempty"`
}

// Page selects a page of changes: those after change Since, at most Limit
// (1-1000; 0 means the server's default of 100).
type Page struct {
	Since int64
	Limit int
}

// NameRequest asks a name manager for new entities; it is sent as an
// entity.NamesAllocateRequest.
type NameRequest struct {
	Driver string `json:"driver"`
	Count  int    `json:"count,omitempty"`
	// Attrs are given to every new entity (key: value).
	Attrs map[string]any `json:"attrs,omitempty"`
	// IdempotencyKey: see IPRequest.
	IdempotencyKey string `json:"-"`
}

// AllocateRequest claims entities matching a query, setting attributes on
// them in the same change; it is sent as an entity.AllocateRequest.
type AllocateRequest struct {
	Query string `json:"query"`
	Count int    `json:"count"`
	// Distinct takes each entity from a different container of this
	// driver (e.g. "rack").
	Distinct string `json:"distinct,omitempty"`
	// Set is written on every entity claimed (key: value).
	Set    map[string]any `json:"set,omitempty"`
	DryRun bool           `json:"dry_run,omitempty"`
	// IdempotencyKey: see IPRequest.
	IdempotencyKey string `json:"-"`
}
