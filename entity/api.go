package entity

// The API's request and answer types: what clustod (package server) reads
// from request bodies and writes as answers, and what the Go client
// (package client) sends and reads back, defined once so that the two
// cannot drift (server/contract_test.go decodes every answer into the
// client's types). The domain types that go on the wire as they are
// (Entity, Attr, Change, Op, OpResult, Location, Allocation, BlockStatus,
// Elevation, Token, TokenEvent) are used as they are; the files api*.go
// add the envelopes around them, the request bodies, and what a client
// needs to read answers back.
//
// A field with the tag json:"-" travels in a header, not the body: Change
// is the X-Clusto-Change of a write's answer, IdempotencyKey the
// Idempotency-Key of an allocation. A client fills them in; the server
// reads and writes the headers itself.
//
// These files import only the standard library and package drivers.

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// ErrorBody is every error answer:
//
//	{"error":{"code":"not_found","message":"...","request_id":"..."}}
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is an error as the API tells it. Code is always the error's
// kind (ErrorKind), which fixes the HTTP status; Reason is the finer code
// some errors carry (exhausted, insufficient, invariant, ...).
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Reason  string `json:"reason,omitempty"`
	// Position locates a query or inventory file syntax error.
	Position *Position `json:"position,omitempty"`
	// Details is structured context: candidates, counts, limits.
	Details   map[string]any `json:"details,omitempty"`
	RequestID string         `json:"request_id"`
}

// Position is a place in a query or a file: 1-based line and column (in
// characters).
type Position struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// Health is the answer of GET /healthz when the database answers.
type Health struct {
	Status string `json:"status"`
	// Change is the newest change number.
	Change int64 `json:"change"`
	// Version is the server's build version (omitted when it has none).
	Version string `json:"version,omitempty"`
}

// HealthUnavailable is the 503 answer of GET /healthz when the database
// does not answer ({"status":"unavailable"}); the log has the cause under
// the request id.
type HealthUnavailable struct {
	RequestID string `json:"request_id"`
	Status    string `json:"status"`
}

// Whoami is the answer of GET /whoami: the caller's token name and role.
type Whoami struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// Results is a page of query results (GET and POST /query).
type Results struct {
	Results []Entity `json:"results"`
	// Total is how many entities match in all; with TotalAtLeast (past
	// the cap of total=capped, the default) only that at least that many
	// do.
	Total        int  `json:"total"`
	TotalAtLeast bool `json:"total_at_least,omitempty"`
	// NextCursor continues with the next page; "" on the last.
	NextCursor string `json:"next_cursor"`
}

// The views of a query's answer (QueryRequest.View).
const (
	// ViewFull answers each match in full (Results): the default.
	ViewFull = "full"
	// ViewSummary answers each match's name, driver, kind and version
	// (SummaryResults): what the query itself reads, so a script that
	// needs only names does not pay for reading whole entities.
	ViewSummary = "summary"
)

// Summary is one match of a query in the summary view.
type Summary struct {
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	Kind    Kind   `json:"kind"`
	Version int64  `json:"version"`
}

// SummaryResults is a page of query results in the summary view.
type SummaryResults struct {
	Results []Summary `json:"results"`
	// Total is how many entities match in all (see Results).
	Total        int  `json:"total"`
	TotalAtLeast bool `json:"total_at_least,omitempty"`
	// NextCursor continues with the next page; "" on the last.
	NextCursor string `json:"next_cursor"`
}

// EntitiesAnswer is the answer of the writes that hand out entities (rack
// units, names, POST /allocate), in the shape of a page of results.
type EntitiesAnswer struct {
	Results []Entity `json:"results"`
}

// Parent is the entity's physical parent (the contains relation), if it
// has one.
func (e *Entity) Parent() (Relation, bool) {
	for _, p := range e.Parents {
		if p.Type == Contains {
			return p, true
		}
	}
	return Relation{}, false
}

// Groups are the groups the entity is a direct member of.
func (e *Entity) Groups() []Relation {
	var out []Relation
	for _, p := range e.Parents {
		if p.Type == Member {
			out = append(out, p)
		}
	}
	return out
}

// AttrValues are the texts of the values of key (and subkey, when not
// empty).
func (e *Entity) AttrValues(key, subkey string) []string {
	var out []string
	for _, a := range e.Attrs {
		if a.Key == key && (subkey == "" || a.Subkey == subkey) {
			out = append(out, a.Text())
		}
	}
	return out
}

// Text is the value's canonical text: what a person reads, what query
// patterns match and what DELETE .../attrs/{key}?value= names.
func (a Attr) Text() string { return a.Value.Text }

// FullKey is key, or key.subkey.
func (a Attr) FullKey() string {
	if a.Subkey != "" {
		return a.Key + "." + a.Subkey
	}
	return a.Key
}

// Units is "RU13", or "RU20-21" for a child taking two units, when the
// relation has a position; "" otherwise.
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

// UnmarshalJSON reads an entity as answers write it, its attributes as
// Attr.MarshalJSON wrote them (see shownAttr). Fields it does not know are
// skipped, so that a client keeps reading the entities of a newer server.
func (e *Entity) UnmarshalJSON(b []byte) error {
	type plain Entity
	aux := struct {
		*plain
		Attrs []shownAttr `json:"attrs"`
	}{plain: (*plain)(e)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	e.Attrs = shownAttrs(aux.Attrs)
	return nil
}

// shownAttr is an attribute read back from an answer: the inverse of
// Attr.MarshalJSON. Attr.UnmarshalJSON is not, since it reads the request
// form, where "type" may be left out and a json value may be given as a
// string holding JSON text: a json value whose JSON is a string ("abc",
// written as "value":"abc") would read back as the JSON text abc, which is
// not JSON. Answers hold canonical values, so nothing is validated.
type shownAttr Attr

func (a *shownAttr) UnmarshalJSON(b []byte) error {
	var j attrJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	v, err := shownValue(j.Value, j.Type)
	if err != nil {
		return Errorf(KindInvalid, "attribute %q: %v", j.Key, err)
	}
	*a = shownAttr{Key: j.Key, Subkey: j.Subkey, Number: j.Number, Value: v, From: j.From}
	return nil
}

// shownValue is the value Value.MarshalJSON wrote as raw: a json value is
// its JSON; a JSON string is the text of any other type; an int or bool
// is its JSON. Without a type (answers always give one), the JSON type
// chooses, as in a request.
func shownValue(raw json.RawMessage, t ValueType) (Value, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case t == "":
		return ValueFromJSON(raw, "")
	case t == TypeJSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return Value{}, err
		}
		return Value{Type: t, Text: buf.String()}, nil
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, err
		}
		return Value{Type: t, Text: s}, nil
	}
	return Value{Type: t, Text: string(raw)}, nil
}

// shownAttrs converts attributes read by shownAttr, keeping nil and empty
// apart.
func shownAttrs(as []shownAttr) []Attr {
	if as == nil {
		return nil
	}
	out := make([]Attr, len(as))
	for i, a := range as {
		out[i] = Attr(a)
	}
	return out
}
