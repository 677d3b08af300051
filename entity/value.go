package entity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ValueType is the type of an attribute value.
type ValueType string

// The value types. A ref names another entity; it disappears when that
// entity is deleted and follows it through renames.
const (
	TypeString ValueType = "string"
	TypeInt    ValueType = "int"
	TypeBool   ValueType = "bool"
	TypeTime   ValueType = "time"
	TypeIP     ValueType = "ip"
	TypeJSON   ValueType = "json"
	TypeRef    ValueType = "ref"
)

// MaxValueLen bounds an attribute value's text, in bytes.
const MaxValueLen = 64 << 10

// Value is a typed attribute value. Text is its canonical text form (what
// query patterns match); construct values with the typed constructors or
// ParseValue so that Text is always canonical.
type Value struct {
	Type ValueType
	Text string
}

// String makes a string value.
func String(s string) Value { return Value{Type: TypeString, Text: s} }

// Int makes an integer value.
func Int(i int64) Value { return Value{Type: TypeInt, Text: strconv.FormatInt(i, 10)} }

// Bool makes a boolean value.
func Bool(b bool) Value { return Value{Type: TypeBool, Text: strconv.FormatBool(b)} }

// Time makes a time value (stored in UTC).
func Time(t time.Time) Value { return Value{Type: TypeTime, Text: t.UTC().Format(time.RFC3339Nano)} }

// IP makes an address value; IPv4-mapped IPv6 addresses are stored as IPv4
// so that one address has one spelling.
func IP(a netip.Addr) Value { return Value{Type: TypeIP, Text: a.Unmap().WithZone("").String()} }

// Ref makes a reference to the entity with the given name.
func Ref(name string) Value { return Value{Type: TypeRef, Text: name} }

// JSON makes a JSON value from raw JSON text, compacted.
func JSON(raw []byte) (Value, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return Value{}, Errorf(KindInvalid, "value is not valid JSON: %v", err)
	}
	return Value{Type: TypeJSON, Text: buf.String()}, nil
}

// ParseValue parses text as a value of type t and returns it in canonical form.
func ParseValue(t ValueType, text string) (Value, error) {
	if len(text) > MaxValueLen {
		return Value{}, Errorf(KindInvalid, "value is %d bytes; the limit is %d", len(text), MaxValueLen)
	}
	if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
		return Value{}, Errorf(KindInvalid, "value must be UTF-8 text without NUL bytes")
	}
	switch t {
	case TypeString, "":
		return String(text), nil
	case TypeInt:
		i, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return Value{}, Errorf(KindInvalid, "value %q is not an integer (64-bit)", text)
		}
		return Int(i), nil
	case TypeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return Value{}, Errorf(KindInvalid, "value %q is not a boolean (true or false)", text)
		}
		return Bool(b), nil
	case TypeTime:
		tm, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(text))
		if err != nil {
			return Value{}, Errorf(KindInvalid, "value %q is not an RFC 3339 time (2026-11-22T10:00:00Z)", text)
		}
		return Time(tm), nil
	case TypeIP:
		a, err := netip.ParseAddr(strings.TrimSpace(text))
		if err != nil || a.Zone() != "" {
			return Value{}, Errorf(KindInvalid, "value %q is not an IP address", text)
		}
		return IP(a), nil
	case TypeJSON:
		return JSON([]byte(text))
	case TypeRef:
		if err := ValidateName(text); err != nil {
			return Value{}, Errorf(KindInvalid, "reference: %v", err)
		}
		return Ref(text), nil
	}
	return Value{}, Errorf(KindInvalid, "unknown value type %q (string, int, bool, time, ip, json, ref)", t)
}

// Int64 returns the value of an int (or bool, as 0/1) value.
func (v Value) Int64() (int64, bool) {
	switch v.Type {
	case TypeInt:
		i, err := strconv.ParseInt(v.Text, 10, 64)
		return i, err == nil
	case TypeBool:
		if v.Text == "true" {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// Addr returns the address of an ip value.
func (v Value) Addr() (netip.Addr, bool) {
	if v.Type != TypeIP {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(v.Text)
	return a, err == nil
}

// IsTrue reports whether v is the boolean true (or the string "true").
func (v Value) IsTrue() bool { return (v.Type == TypeBool || v.Type == TypeString) && v.Text == "true" }

func (v Value) String() string { return v.Text }

// MarshalJSON writes the value in its natural JSON form: numbers and
// booleans as JSON numbers and booleans, JSON as itself, the rest as strings.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Type {
	case TypeInt, TypeBool, TypeJSON:
		if v.Text != "" {
			return []byte(v.Text), nil
		}
	}
	return json.Marshal(v.Text)
}

// ValueFromJSON decodes a JSON value. With an explicit type the JSON (a
// string, or the natural form) is parsed as that type; without one, numbers
// become int, booleans bool, strings string, and objects or arrays json.
func ValueFromJSON(raw json.RawMessage, t ValueType) (Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Value{}, Errorf(KindInvalid, "value is missing")
	}
	var s string
	isString := raw[0] == '"'
	if isString {
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, Errorf(KindInvalid, "value is not a valid JSON string: %v", err)
		}
	}
	if t == TypeJSON {
		if isString {
			return JSON([]byte(s))
		}
		return JSON(raw)
	}
	if isString {
		return ParseValue(t, s)
	}
	switch raw[0] {
	case 't', 'f':
		if t != "" && t != TypeBool && t != TypeString {
			return Value{}, Errorf(KindInvalid, "value %s is a boolean, not %s", raw, t)
		}
		if t == TypeString {
			return String(string(raw)), nil
		}
		return ParseValue(TypeBool, string(raw))
	case '{', '[':
		if t != "" {
			return Value{}, Errorf(KindInvalid, "value is a JSON %s; give type json or a %s", map[byte]string{'{': "object", '[': "array"}[raw[0]], t)
		}
		return JSON(raw)
	}
	// A number.
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return Value{}, Errorf(KindInvalid, "value is not valid JSON: %v", err)
	}
	if t == TypeString {
		return String(n.String()), nil
	}
	if t != "" && t != TypeInt {
		return Value{}, Errorf(KindInvalid, "value %s is a number, not %s", n, t)
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		f, ferr := n.Float64()
		if ferr == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return Int(int64(f)), nil
		}
		return Value{}, Errorf(KindInvalid, "value %s is not a 64-bit integer (give it as a string to keep it as text)", n)
	}
	return Int(i), nil
}

// Attr is one attribute value: Clusto's key, optional subkey and number, and
// a typed value. In merged views From names the entity it was inherited from.
type Attr struct {
	Key    string
	Subkey string
	Number *int64
	Value  Value
	From   string
}

// N returns a pointer to n, for Attr.Number.
func N(n int64) *int64 { return &n }

type attrJSON struct {
	Key    string          `json:"key"`
	Subkey string          `json:"subkey,omitempty"`
	Number *int64          `json:"number"`
	Value  json.RawMessage `json:"value"`
	Type   ValueType       `json:"type,omitempty"`
	From   string          `json:"from,omitempty"`
}

// MarshalJSON writes {"key","subkey","number","value","type","from"}.
func (a Attr) MarshalJSON() ([]byte, error) {
	v, err := a.Value.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return json.Marshal(attrJSON{Key: a.Key, Subkey: a.Subkey, Number: a.Number, Value: v, Type: a.Value.Type, From: a.From})
}

// UnmarshalJSON reads the form MarshalJSON writes; "type" is optional.
func (a *Attr) UnmarshalJSON(b []byte) error {
	var j attrJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Errorf(KindInvalid, "attribute: %v", err)
	}
	v, err := ValueFromJSON(j.Value, j.Type)
	if err != nil {
		return Errorf(KindInvalid, "attribute %q: %v", j.Key, err)
	}
	*a = Attr{Key: j.Key, Subkey: j.Subkey, Number: j.Number, Value: v, From: j.From}
	return nil
}

func (a Attr) String() string {
	s := a.Key
	if a.Subkey != "" {
		s += "." + a.Subkey
	}
	if a.Number != nil {
		s += fmt.Sprintf("[%d]", *a.Number)
	}
	return s + "=" + a.Value.Text
}
