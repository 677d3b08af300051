package client

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Entity is one thing in the inventory, as the API shows it.
type Entity struct {
	Name      string    `json:"name"`
	Driver    string    `json:"driver"`
	Kind      string    `json:"kind"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Attrs     []Attr    `json:"attrs"`
	// Parents are its physical parent (Type "contains") and its groups
	// ("member").
	Parents []Relation `json:"parents"`
	// Children are what it contains and, for a group, its members.
	Children []Relation `json:"children"`
	Links    []Link     `json:"links"`

	// Change is the number of the change a write recorded, on an entity a
	// write answered with (from X-Clusto-Change); 0 on reads.
	Change int64 `json:"-"`
}

// Parent is the entity's physical parent, if it has one.
func (e *Entity) Parent() (Relation, bool) {
	for _, p := range e.Parents {
		if p.Type == "contains" {
			return p, true
		}
	}
	return Relation{}, false
}

// Groups are the groups the entity is a direct member of.
func (e *Entity) Groups() []Relation {
	var out []Relation
	for _, p := range e.Parents {
		if p.Type == "member" {
			out = append(out, p)
		}
	}
	return out
}

// AttrValues are the values of key (and subkey, when not empty), as text.
func (e *Entity) AttrValues(key, subkey string) []string {
	var out []string
	for _, a := range e.Attrs {
		if a.Key == key && (subkey == "" || a.Subkey == subkey) {
			out = append(out, a.Text())
		}
	}
	return out
}

// Attr is one attribute value. Value keeps the JSON type the API gives it
// (numbers and booleans as such); Text gives it as text.
type Attr struct {
	Key    string          `json:"key"`
	Subkey string          `json:"subkey,omitempty"`
	Number *int64          `json:"number"`
	Value  json.RawMessage `json:"value"`
	Type   string          `json:"type"`
	// From is the entity the value comes from, in a merged view.
	From string `json:"from,omitempty"`
}

// Text is the value as a person reads it: a string without its quotes,
// anything else as its JSON.
func (a Attr) Text() string {
	var s string
	if len(a.Value) > 0 && a.Value[0] == '"' && json.Unmarshal(a.Value, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, a.Value) == nil {
		return buf.String()
	}
	return string(a.Value)
}

// FullKey is key, or key.subkey.
func (a Attr) FullKey() string {
	if a.Subkey != "" {
		return a.Key + "." + a.Subkey
	}
	return a.Key
}

// Relation is a contains or member connection seen from one side.
type Relation struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// Position is the lowest rack unit taken, Height the units taken.
	Position *int64 `json:"position,omitempty"`
	Height   *int64 `json:"height,omitempty"`
}

// Units is "RU13" or "RU20-21" for a placed child, "" otherwise.
func (r Relation) Units() string {
	if r.Position == nil {
		return ""
	}
	p := *r.Position
	if r.Height != nil && *r.Height > 1 {
		return "RU" + strconv.FormatInt(p, 10) + "-" + strconv.FormatInt(p+*r.Height-1, 10)
	}
	return "RU" + strconv.FormatInt(p, 10)
}

// Link is a cable from one of the entity's ports to a peer's port.
type Link struct {
	Port     string `json:"port"`
	Type     string `json:"type"`
	Peer     string `json:"peer"`
	PeerPort string `json:"peer_port"`
}

// AttrInput is an attribute value to write. Value is any JSON-encodable
// value (a json.RawMessage is sent as it is); Type, when set, chooses the
// stored type (string, int, bool, time, ip, json, ref).
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

// NewEntity is an entity to create.
type NewEntity struct {
	Name   string      `json:"name"`
	Driver string      `json:"driver"`
	Attrs  []AttrInput `json:"attrs,omitempty"`
}

// Attrs is an entity's attributes, as the attribute endpoints answer.
type Attrs struct {
	Entity  string `json:"entity"`
	Version int64  `json:"version"`
	Attrs   []Attr `json:"attrs"`
	// Added is the value an add wrote; Removed the values a delete took.
	Added   *Attr  `json:"added,omitempty"`
	Removed []Attr `json:"removed,omitempty"`
	// Change is the change a write recorded; 0 on reads.
	Change int64 `json:"-"`
}

// Deleted is the answer to a delete.
type Deleted struct {
	Deleted string `json:"deleted"`
	Change  int64  `json:"change"`
}

// Cable is a link between two ports, as POST and DELETE /links take and
// answer it.
type Cable struct {
	A     string `json:"a"`
	APort string `json:"a_port,omitempty"`
	B     string `json:"b"`
	BPort string `json:"b_port,omitempty"`
	// Type is the ports' type, in answers only.
	Type string `json:"type,omitempty"`
}

// Location is where an entity is: a line per cable of its own, then a
// line per container up to the top.
type Location struct {
	Entity string `json:"entity"`
	Driver string `json:"driver"`
	// Path is the entity and its containers, innermost first.
	Path  []string       `json:"path"`
	Lines []LocationLine `json:"lines"`
}

// LocationLine is one line of a Location; Text is its readable form
// ("server1 -> connected to port 4 on switch2a").
type LocationLine struct {
	Entity     string `json:"entity"`
	Relation   string `json:"relation"`
	Port       string `json:"port,omitempty"`
	PortType   string `json:"port_type,omitempty"`
	Peer       string `json:"peer"`
	PeerDriver string `json:"peer_driver"`
	PeerPort   string `json:"peer_port,omitempty"`
	Position   *int64 `json:"position,omitempty"`
	Height     *int64 `json:"height,omitempty"`
	Text       string `json:"text"`
}

// Consoles is which console server ports an entity's console ports are
// cabled to.
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

// Power is which PDU outlets an entity's power ports are cabled to.
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

// Change is one record of the change log.
type Change struct {
	Change int64     `json:"change"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Op     string    `json:"op"`
	Entity string    `json:"entity"`
	Peer   string    `json:"peer,omitempty"`
	// Before and After are what changed; JSON null when nothing was there.
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// Changes is a page of the change log.
type Changes struct {
	Changes []Change `json:"changes"`
	// Next is the Since of the next page.
	Next int64 `json:"next"`
}

// Page selects a page of changes: those after change Since, at most Limit
// (1-1000; 0 means the server's default of 100).
type Page struct {
	Since int64
	Limit int
}

// Health is GET /healthz.
type Health struct {
	Status string `json:"status"`
	// Change is the newest change number.
	Change int64 `json:"change"`
	// Version is the server's version, when it tells it.
	Version string `json:"version,omitempty"`
}

// Whoami is the token a request was made with.
type Whoami struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// Token is an API token; Token (the secret) is only in the answer to its
// creation.
type Token struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	Token     string    `json:"token,omitempty"`
}

// TokenEvent is one entry of the token audit list: a token created or
// revoked. It never holds the token's secret.
type TokenEvent struct {
	// ID numbers the events in order (the Since of Page).
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	// Actor is the token the request was made with ("anonymous" without
	// one), or "clustod/USER" for clustod token run on the server's host.
	Actor string `json:"actor"`
	// Action is "create" or "revoke".
	Action string `json:"action"`
	// Token and Role are the name and role of the token created or revoked.
	Token string `json:"token"`
	Role  string `json:"role"`
	// RequestID is the API request's id ("" from the command line).
	RequestID string `json:"request_id,omitempty"`
}

// TokenAudit is a page of the token audit list.
type TokenAudit struct {
	Events []TokenEvent `json:"events"`
	// Next is the Since of the next page.
	Next int64 `json:"next"`
}

// Driver is a type of thing the server knows.
type Driver struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Description string   `json:"description,omitempty"`
	Parents     []string `json:"parents,omitempty"`
	// Ports is the driver's port declaration; PortList spells every port
	// out (GET /drivers/{name} only).
	Ports    json.RawMessage     `json:"ports,omitempty"`
	Height   int64               `json:"height,omitempty"`
	Attrs    map[string]AttrSpec `json:"attrs,omitempty"`
	PortList []Port              `json:"port_list,omitempty"`
}

// AttrSpec is an attribute key a driver declares.
type AttrSpec struct {
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	Min         *int64 `json:"min,omitempty"`
}

// Port is one port of a driver.
type Port struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Query asks for the entities matching Q (the query language of
// docs/query.md).
type Query struct {
	Q string `json:"q"`
	// Limit is the page size (0: the server's default).
	Limit int `json:"limit,omitempty"`
	// Cursor continues from a previous page's NextCursor.
	Cursor string `json:"cursor,omitempty"`
	// At reads as of a change (0: now).
	At int64 `json:"at,omitempty"`
}

// Results is a page of query results.
type Results struct {
	Results []Entity `json:"results"`
	// Total is how many entities match in all.
	Total int `json:"total"`
	// NextCursor continues with the next page; "" on the last.
	NextCursor string `json:"next_cursor"`
}

// Explanation is the SQL a query compiles to, its bound parameters and
// SQLite's plan for it.
type Explanation struct {
	SQL  string   `json:"sql"`
	Args []any    `json:"args"`
	Plan []string `json:"plan,omitempty"`
}

// Export is the inventory, or what a query selects, as an inventory file.
type Export struct {
	Content string `json:"content"`
	// Count is how many entities it holds.
	Count int `json:"count"`
}

// IPRequest asks a block for addresses for an entity.
type IPRequest struct {
	Entity string `json:"entity"`
	// Count addresses (0: one), or the one Address given.
	Count     int    `json:"count,omitempty"`
	Address   string `json:"address,omitempty"`
	Interface string `json:"interface,omitempty"`
	// IdempotencyKey makes repeats of the request safe: the server answers
	// a repeat with the first answer. When empty, the client makes one for
	// the call, so that its own retries are safe.
	IdempotencyKey string `json:"-"`
}

// IPAllocation is an address held by an entity.
type IPAllocation struct {
	Address   string `json:"address"`
	Block     string `json:"block"`
	Entity    string `json:"entity"`
	Interface string `json:"interface,omitempty"`
}

// IPBlock is a block's size, use and allocations. The counts are
// json.Number, since an IPv6 block's size does not fit 64 bits.
type IPBlock struct {
	Name        string         `json:"name"`
	CIDR        string         `json:"cidr"`
	Gateway     string         `json:"gateway,omitempty"`
	Size        json.Number    `json:"size"`
	Reserved    json.Number    `json:"reserved"`
	Allocated   json.Number    `json:"allocated"`
	Free        json.Number    `json:"free"`
	Children    []string       `json:"children"`
	Parent      string         `json:"parent,omitempty"`
	Allocations []IPAllocation `json:"allocations"`
}

// RackRequest asks a rack for units for an entity.
type RackRequest struct {
	Entity string `json:"entity"`
	// Height defaults to the entity's; Position (the lowest unit) to the
	// lowest free range that fits.
	Height   *int64 `json:"height,omitempty"`
	Position *int64 `json:"position,omitempty"`
	// IdempotencyKey: see IPRequest.
	IdempotencyKey string `json:"-"`
}

// Elevation is a rack unit by unit, top unit first.
type Elevation struct {
	Rack     string   `json:"rack"`
	Units    int64    `json:"units"`
	Free     int64    `json:"free"`
	Rows     []Unit   `json:"rows"`
	Unplaced []string `json:"unplaced"`
}

// Unit is one rack unit; Device is empty when it is free.
type Unit struct {
	Unit   int64  `json:"unit"`
	Device string `json:"device,omitempty"`
	Driver string `json:"driver,omitempty"`
	// Base is the device's lowest unit, Height its size.
	Base   int64 `json:"base,omitempty"`
	Height int64 `json:"height,omitempty"`
	Free   bool  `json:"free"`
}

// NameRequest asks a name manager for new entities.
type NameRequest struct {
	Driver string `json:"driver"`
	Count  int    `json:"count,omitempty"`
	// Attrs are given to every new entity (key: value).
	Attrs map[string]any `json:"attrs,omitempty"`
	// IdempotencyKey: see IPRequest.
	IdempotencyKey string `json:"-"`
}

// AllocateRequest claims entities matching a query, setting attributes on
// them in the same change.
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

// Op is one write of a batch (see docs/api.md for the fields each op
// takes): create, delete, rename, attr_add, attr_set, attr_del, insert,
// remove, link, unlink, allocate_ip, release_ip, allocate_ru, allocate_name.
type Op struct {
	Op         string            `json:"op"`
	Name       string            `json:"name,omitempty"`
	Driver     string            `json:"driver,omitempty"`
	Attrs      []json.RawMessage `json:"attrs,omitempty"`
	NewName    string            `json:"new_name,omitempty"`
	Cascade    bool              `json:"cascade,omitempty"`
	Key        string            `json:"key,omitempty"`
	Subkey     *string           `json:"subkey,omitempty"`
	Number     *int64            `json:"number,omitempty"`
	AutoNumber bool              `json:"auto_number,omitempty"`
	Value      json.RawMessage   `json:"value,omitempty"`
	Values     []json.RawMessage `json:"values,omitempty"`
	Type       string            `json:"type,omitempty"`
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

// OpResult is what one op of a batch did.
type OpResult struct {
	Index   int      `json:"index"`
	Op      string   `json:"op"`
	Changes []Change `json:"changes"`
	// Result is what an allocation handed out.
	Result json.RawMessage `json:"result,omitempty"`
}

// BatchResult is the answer to a batch.
type BatchResult struct {
	Results []OpResult `json:"results"`
	DryRun  bool       `json:"dry_run"`
}

// File is an inventory file (YAML or JSON) to plan or apply.
type File struct {
	// Name is shown in error positions ("demo.yaml:12:3").
	Name    string `json:"file"`
	Content string `json:"content"`
	// Prune deletes entities the file does not mention.
	Prune  bool `json:"prune,omitempty"`
	DryRun bool `json:"dry_run,omitempty"`
}

// Plan is what applying a file would change.
type Plan struct {
	Steps  []PlanStep `json:"steps"`
	Create int        `json:"create"`
	Change int        `json:"change"`
	Delete int        `json:"delete"`
}

// PlanStep is one step of a plan.
type PlanStep struct {
	// Action is create, change or delete.
	Action  string `json:"action"`
	Entity  string `json:"entity"`
	Summary string `json:"summary"`
	Op      Op     `json:"op"`
	// Source is where in the file the step comes from.
	Source string `json:"source,omitempty"`
}

// Applied is the answer to an apply.
type Applied struct {
	Plan    Plan       `json:"plan"`
	Results []OpResult `json:"results"`
	DryRun  bool       `json:"dry_run,omitempty"`
}
