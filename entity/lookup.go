package entity

// How a lookup term matched an entity, in the order they are tried.
const (
	MatchName   = "name"
	MatchIP     = "ip"
	MatchMAC    = "mac"
	MatchSerial = "serial"
)

// MaxLookupTermLen bounds a lookup term, in bytes.
const MaxLookupTermLen = 1024

// Match is one entity a lookup term resolved to, and how: by its name, by
// an attribute of type ip holding the address, by its `mac` attribute or by
// its `serial` attribute. Key and Value name the attribute that matched.
type Match struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	By     string `json:"matched_by"`
	Key    string `json:"key,omitempty"`
	Value  string `json:"value,omitempty"`
}
