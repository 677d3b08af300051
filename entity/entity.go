// Package entity holds the inventory's domain types: entities, attributes
// and their values, connections, changes, the write operations and
// allocation requests, roles, and errors with a kind. It knows nothing of
// how they are stored: the SQLite store is entity/store, and this package
// imports no database code, so that the client, the CLI and a second
// backend can use these types without pulling in SQLite.
package entity

import (
	"encoding/json"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clusto/clusto/drivers"
)

// Kind is the broad category of an entity, from its driver.
type Kind = drivers.Kind

// Connection types.
const (
	Contains = "contains"
	Member   = "member"
	LinkType = "link"
)

// Entity is one thing in the inventory as read back, with its attributes and
// connections.
type Entity struct {
	ID        int64     `json:"-"`
	Name      string    `json:"name"`
	Driver    string    `json:"driver"`
	Kind      Kind      `json:"kind"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Attrs     []Attr    `json:"attrs"`
	// Parents are the physical parent (contains) and the groups it belongs to (member).
	Parents []Relation `json:"parents"`
	// Children are what it contains and, for a group, its members.
	Children []Relation `json:"children"`
	Links    []Link     `json:"links"`
}

// Relation is one side of a contains or member connection as seen from an entity.
type Relation struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Driver   string `json:"driver"`
	Position *int64 `json:"position,omitempty"`
	Height   *int64 `json:"height,omitempty"`
}

// Link is a cable from one of an entity's ports to a peer's port.
type Link struct {
	Port     string `json:"port"`
	Type     string `json:"type"`
	Peer     string `json:"peer"`
	PeerPort string `json:"peer_port"`
}

// Change is one record of the change log.
type Change struct {
	Number int64           `json:"change"`
	Time   time.Time       `json:"time"`
	Actor  string          `json:"actor"`
	Op     string          `json:"op"`
	Entity string          `json:"entity"`
	Peer   string          `json:"peer,omitempty"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// Change operations.
const (
	OpCreate   = "create"
	OpDelete   = "delete"
	OpRename   = "rename"
	OpAttrAdd  = "attr_add"
	OpAttrSet  = "attr_set"
	OpAttrDel  = "attr_del"
	OpInsert   = "insert"
	OpRemove   = "remove"
	OpLink     = "link"
	OpUnlink   = "unlink"
	OpAllocate = "allocate"
	OpRelease  = "release"
)

// MaxNameLen bounds entity names, in characters.
const MaxNameLen = 255

// ValidateName checks an entity name: 1-255 characters, valid UTF-8, no
// whitespace or control characters. Names are case-sensitive.
func ValidateName(name string) error {
	if name == "" {
		return Errorf(KindInvalid, "name is empty")
	}
	if !utf8.ValidString(name) {
		return Errorf(KindInvalid, "name is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return Errorf(KindInvalid, "name is %d characters long; the limit is %d", n, MaxNameLen)
	}
	for i, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return Errorf(KindInvalid, "name %q has a whitespace or control character at byte %d", name, i)
		}
	}
	return nil
}

var keyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,127}$`)

// ValidateKey checks an attribute key or subkey: a letter or '_' then
// letters, digits, '_' or '-', at most 128 characters, so that keys read
// unambiguously in queries (attr:key.subkey,value).
func ValidateKey(what, key string) error {
	if !keyRE.MatchString(key) {
		if key == "" {
			return Errorf(KindInvalid, "%s is empty", what)
		}
		return Errorf(KindInvalid, "%s %q must start with a letter or '_' and hold only letters, digits, '_' or '-' (at most 128)", what, key)
	}
	return nil
}
