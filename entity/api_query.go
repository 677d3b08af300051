package entity

import "encoding/json"

// The request and answer types of queries, exports and allocations (see
// api.go).

// QueryRequest asks for the entities matching Q (docs/query.md): the body
// of POST /query, and the parameters of GET /query.
type QueryRequest struct {
	Q string `json:"q"`
	// Limit is the page size (0: the server's default).
	Limit int `json:"limit,omitempty"`
	// Cursor continues from a previous page's NextCursor.
	Cursor string `json:"cursor,omitempty"`
	// At reads as of a change (0: now).
	At int64 `json:"at,omitempty"`
	// Explain asks for the query's SQL and plan (Explanation) instead of
	// its results.
	Explain bool `json:"explain,omitempty"`
	// View is ViewFull (or empty: whole entities, Results) or ViewSummary
	// (names, drivers, kinds and versions, SummaryResults).
	View string `json:"view,omitempty"`
	// Total is TotalCapped (or empty: count up to a thousand; past it the
	// answer says total_at_least) or TotalExact (count every match).
	Total string `json:"total,omitempty"`
}

// The ways a query's total may be counted (QueryRequest.Total).
const (
	TotalExact  = "exact"
	TotalCapped = "capped"
)

// Explanation is the answer of a query with explain: the SQL it compiles
// to, its bound parameters (blobs as SQL hex literals) and SQLite's plan
// for it.
type Explanation struct {
	SQL  string   `json:"sql"`
	Args []any    `json:"args"`
	Plan []string `json:"plan"`
}

// Export is the answer of GET /export: the inventory, or what a query
// selects, as an inventory file.
type Export struct {
	Content string `json:"content"`
	// Count is how many entities it holds.
	Count int `json:"count"`
}

// IPAllocateRequest is the body of POST /ipblocks/{name}/allocate: Count
// addresses (0: one), or the one Address given, for Entity.
type IPAllocateRequest struct {
	Entity    string `json:"entity"`
	Count     int    `json:"count,omitempty"`
	Address   string `json:"address,omitempty"`
	Interface string `json:"interface,omitempty"`
	// IdempotencyKey is sent as the Idempotency-Key header: the server
	// answers a repeat of the request with the first answer.
	IdempotencyKey string `json:"-"`
}

// Allocations is the answer of POST /ipblocks/{name}/allocate (the
// addresses handed out) and DELETE /ipblocks/{name}/allocations/{address}
// (the one released).
type Allocations struct {
	Allocations []Allocation `json:"allocations"`
}

// RackAllocateRequest is the body of POST /racks/{name}/allocate. Height
// defaults to the entity's, Position (the lowest unit) to the lowest free
// range that fits.
type RackAllocateRequest struct {
	Entity   string `json:"entity"`
	Height   *int64 `json:"height,omitempty"`
	Position *int64 `json:"position,omitempty"`
	// IdempotencyKey: see IPAllocateRequest.
	IdempotencyKey string `json:"-"`
}

// NamesAllocateRequest is the body of POST /names/{manager}/allocate:
// Count new entities of Driver, each given Attrs (key: a value, or a JSON
// list of values).
type NamesAllocateRequest struct {
	Driver string                     `json:"driver"`
	Count  int                        `json:"count,omitempty"`
	Attrs  map[string]json.RawMessage `json:"attrs,omitempty"`
}

// AllocateRequest is the body of POST /allocate: Count entities matching
// Query, claimed and given Set (key: value) in one change; Distinct takes
// each from a different container of that driver; DryRun says what would
// be claimed.
type AllocateRequest struct {
	Query    string                     `json:"query"`
	Count    int                        `json:"count"`
	Distinct string                     `json:"distinct,omitempty"`
	Set      map[string]json.RawMessage `json:"set,omitempty"`
	DryRun   bool                       `json:"dry_run,omitempty"`
}
