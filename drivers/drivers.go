// Package drivers describes the types of things the inventory holds: each
// driver declares its kind, where it may sit, its ports, its size in rack
// units and the attributes it expects. Built-in drivers cover a datacenter;
// operators add their own from a JSON file without recompiling.
package drivers

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Kind is the broad category of a driver: Clusto's equipment, parts and
// resources, plus the groups things are put in.
type Kind string

// The four kinds.
const (
	Equipment Kind = "equipment"
	Part      Kind = "part"
	Resource  Kind = "resource"
	Group     Kind = "group"
)

// Valid reports whether k is one of the four kinds.
func (k Kind) Valid() bool {
	switch k {
	case Equipment, Part, Resource, Group:
		return true
	}
	return false
}

// Attribute value types a driver may declare for a key. "cidr" is a string
// that must parse as a network prefix.
const (
	TypeString = "string"
	TypeInt    = "int"
	TypeBool   = "bool"
	TypeTime   = "time"
	TypeIP     = "ip"
	TypeJSON   = "json"
	TypeRef    = "ref"
	TypeCIDR   = "cidr"
)

var attrTypes = map[string]bool{TypeString: true, TypeInt: true, TypeBool: true, TypeTime: true, TypeIP: true, TypeJSON: true, TypeRef: true, TypeCIDR: true}

// AttrSpec is what a driver expects of one attribute key.
type AttrSpec struct {
	Type string `json:"type"`
	// Min is the smallest allowed value of an int attribute, when set.
	Min *int64 `json:"min,omitempty"`
	// Description says what the key means, for docs and `clusto info`.
	Description string `json:"description,omitempty"`
}

// PortSpec declares a set of ports of one type. Either Names lists them, or
// they are Prefix+From .. Prefix+To (a 48-port switch: From 1, To 48).
type PortSpec struct {
	Type   string   `json:"type"`
	Names  []string `json:"names,omitempty"`
	Prefix string   `json:"prefix,omitempty"`
	From   int      `json:"from,omitempty"`
	To     int      `json:"to,omitempty"`
}

// Driver describes one type of thing.
type Driver struct {
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	Description string `json:"description,omitempty"`
	// Parents lists the drivers that may physically contain this one; empty
	// means it is never contained (a datacenter, a group).
	Parents []string `json:"parents,omitempty"`
	// Ports the driver's entities have, for links.
	Ports []PortSpec `json:"ports,omitempty"`
	// Height is the default size in rack units (the `height` attribute overrides it).
	Height int `json:"height,omitempty"`
	// Units is the default number of rack units of a container that holds
	// devices at positions (a rack; the `units` attribute overrides it). Zero
	// means positions are not used inside it.
	Units int `json:"units,omitempty"`
	// Attrs are the keys this driver knows, with their types.
	Attrs map[string]AttrSpec `json:"attrs,omitempty"`
}

// Port is one concrete port of a driver.
type Port struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// PortList expands the driver's port specs in declaration order.
func (d *Driver) PortList() []Port {
	var ps []Port
	for _, s := range d.Ports {
		for _, n := range s.Names {
			ps = append(ps, Port{Name: n, Type: s.Type})
		}
		for i := s.From; s.To > 0 && i <= s.To; i++ {
			ps = append(ps, Port{Name: s.Prefix + strconv.Itoa(i), Type: s.Type})
		}
	}
	return ps
}

// Port looks up a port by name.
func (d *Driver) Port(name string) (Port, bool) {
	for _, s := range d.Ports {
		for _, n := range s.Names {
			if n == name {
				return Port{Name: n, Type: s.Type}, true
			}
		}
		if s.To > 0 && strings.HasPrefix(name, s.Prefix) {
			rest := name[len(s.Prefix):]
			if i, err := strconv.Atoi(rest); err == nil && strconv.Itoa(i) == rest && i >= s.From && i <= s.To {
				return Port{Name: name, Type: s.Type}, true
			}
		}
	}
	return Port{}, false
}

// MayContain reports whether a child of driver child may sit physically in d.
func (d *Driver) MayContain(child *Driver) bool {
	for _, p := range child.Parents {
		if p == d.Name || p == "*" {
			return true
		}
	}
	return false
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Validate checks a driver definition and canonicalises its name.
func (d *Driver) Validate() error {
	d.Name = strings.ToLower(d.Name)
	if !nameRE.MatchString(d.Name) {
		return fmt.Errorf("driver name %q: must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter", d.Name)
	}
	if !d.Kind.Valid() {
		return fmt.Errorf("driver %s: kind %q must be one of equipment, part, resource, group", d.Name, d.Kind)
	}
	if d.Height < 0 || d.Units < 0 {
		return fmt.Errorf("driver %s: height and units must not be negative", d.Name)
	}
	for i := range d.Parents {
		d.Parents[i] = strings.ToLower(d.Parents[i])
	}
	seen := map[string]bool{}
	for _, s := range d.Ports {
		if s.Type == "" {
			return fmt.Errorf("driver %s: every port needs a type (nic, console, power, ...)", d.Name)
		}
		if s.From < 0 || s.To < 0 || (s.To > 0 && s.From > s.To) || s.To > 100000 {
			return fmt.Errorf("driver %s: port range %s%d-%d is not a valid range", d.Name, s.Prefix, s.From, s.To)
		}
	}
	for _, p := range d.PortList() {
		if p.Name == "" || strings.ContainsAny(p.Name, " \t\n:") {
			return fmt.Errorf("driver %s: port name %q must be non-empty without spaces or ':'", d.Name, p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("driver %s: port %q declared twice", d.Name, p.Name)
		}
		seen[p.Name] = true
	}
	for k, a := range d.Attrs {
		if !attrTypes[a.Type] {
			return fmt.Errorf("driver %s: attribute %q has unknown type %q", d.Name, k, a.Type)
		}
	}
	// The rack-unit rules read `units` of a container with units and
	// `height` of equipment that can be placed: they are positive
	// integers whatever a driver file says of them.
	for key, applies := range map[string]bool{"units": d.Units > 0, "height": d.Placeable()} {
		if !applies {
			continue
		}
		spec, ok := d.Attrs[key]
		if ok && spec.Type != TypeInt {
			return fmt.Errorf("driver %s: attribute %q must be an int (the rack-unit rules read it), not %s", d.Name, key, spec.Type)
		}
		if !ok || spec.Min == nil || *spec.Min < 1 {
			if d.Attrs == nil {
				d.Attrs = map[string]AttrSpec{}
			}
			if spec.Description == "" {
				spec.Description = map[string]string{"units": "rack units it holds", "height": "size in rack units"}[key]
			}
			spec.Type, spec.Min = TypeInt, int64p(1)
			d.Attrs[key] = spec
		}
	}
	return nil
}

// Placeable reports whether the driver's entities can be placed at rack
// units: equipment that may sit in something.
func (d *Driver) Placeable() bool { return d.Kind == Equipment && len(d.Parents) > 0 }

// Registry holds the drivers a server knows. It is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	drivers map[string]*Driver
}

// Lookup finds a driver by name, case-insensitively.
func (r *Registry) Lookup(name string) (*Driver, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.drivers[strings.ToLower(name)]
	return d, ok
}

// Names lists the registered driver names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns the drivers sorted by name.
func (r *Registry) All() []*Driver {
	var ds []*Driver
	for _, n := range r.Names() {
		d, _ := r.Lookup(n)
		ds = append(ds, d)
	}
	return ds
}

// Register adds or replaces a driver after validating it. Parents must name
// drivers already registered (or "*").
func (r *Registry) Register(d Driver) error {
	if err := d.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range d.Parents {
		if _, ok := r.drivers[p]; !ok && p != "*" && p != d.Name {
			return fmt.Errorf("driver %s: parent driver %q is not registered", d.Name, p)
		}
	}
	r.drivers[d.Name] = &d
	return nil
}

// LoadFile registers the drivers in a JSON file: {"drivers":[{...}, ...]}.
// Either all of them register or none do.
func (r *Registry) LoadFile(path string) error {
	staged, err := r.Staged(path)
	if err != nil {
		return err
	}
	r.Replace(staged)
	return nil
}

// Replace makes r hold exactly the drivers of other.
func (r *Registry) Replace(other *Registry) {
	other.mu.RLock()
	ds := make(map[string]*Driver, len(other.drivers))
	for k, v := range other.drivers {
		ds[k] = v
	}
	other.mu.RUnlock()
	r.mu.Lock()
	r.drivers = ds
	r.mu.Unlock()
}

// Changed lists, sorted, the drivers that other adds to r or defines
// differently.
func (r *Registry) Changed(other *Registry) []string {
	var out []string
	for _, n := range other.Names() {
		od, _ := other.Lookup(n)
		if d, ok := r.Lookup(n); !ok || !reflect.DeepEqual(d, od) {
			out = append(out, n)
		}
	}
	return out
}

// Staged returns a new registry holding r's drivers and those of a
// drivers file, leaving r as it is: a caller can judge the result before
// adopting it with Replace.
func (r *Registry) Staged(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read drivers file: %w", err)
	}
	var doc struct {
		Drivers []Driver `json:"drivers"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("drivers file %s: %w", path, err)
	}
	if len(doc.Drivers) == 0 {
		return nil, fmt.Errorf("drivers file %s: no drivers in it (expected {\"drivers\":[...]})", path)
	}
	staged := &Registry{drivers: map[string]*Driver{}}
	r.mu.RLock()
	for k, v := range r.drivers {
		staged.drivers[k] = v
	}
	r.mu.RUnlock()
	for i, d := range doc.Drivers {
		if err := staged.Register(d); err != nil {
			return nil, fmt.Errorf("drivers file %s: driver #%d: %w", path, i+1, err)
		}
	}
	return staged, nil
}

func int64p(v int64) *int64 { return &v }

func rangePorts(typ string, from, to int) PortSpec {
	return PortSpec{Type: typ, From: from, To: to}
}

func namedPorts(typ string, names ...string) PortSpec {
	return PortSpec{Type: typ, Names: names}
}

// Builtin returns a new registry holding the built-in drivers.
func Builtin() *Registry {
	r := &Registry{drivers: map[string]*Driver{}}
	positive := func(desc string) AttrSpec { return AttrSpec{Type: TypeInt, Min: int64p(1), Description: desc} }
	device := map[string]AttrSpec{
		"height":    positive("size in rack units"),
		"serial":    {Type: TypeString, Description: "serial number"},
		"mac":       {Type: TypeString, Description: "MAC address"},
		"status":    {Type: TypeString, Description: "lifecycle state, e.g. unallocated, allocated, spare, broken"},
		"ip":        {Type: TypeIP, Description: "an address held by this entity"},
		"model":     {Type: TypeString},
		"vendor":    {Type: TypeString},
		"asset":     {Type: TypeString, Description: "asset tag"},
		"owner":     {Type: TypeString},
		"memory_gb": {Type: TypeInt, Min: int64p(0)},
		"cpus":      {Type: TypeInt, Min: int64p(0)},
	}
	withDevice := func(extra map[string]AttrSpec) map[string]AttrSpec {
		m := map[string]AttrSpec{}
		for k, v := range device {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	rackable := []string{"rack"}
	builtins := []Driver{
		{Name: "datacenter", Kind: Equipment, Description: "a site", Attrs: map[string]AttrSpec{"address": {Type: TypeString}, "region": {Type: TypeString}}},
		{Name: "room", Kind: Equipment, Description: "a room in a datacenter", Parents: []string{"datacenter"}},
		{Name: "row", Kind: Equipment, Description: "a row of racks", Parents: []string{"room", "datacenter"}},
		{Name: "rack", Kind: Equipment, Description: "a rack with numbered units", Parents: []string{"row", "room", "datacenter"}, Units: 42,
			Attrs: map[string]AttrSpec{"units": positive("rack height in units"), "row": {Type: TypeInt}, "status": {Type: TypeString}, "asset": {Type: TypeString}}},
		{Name: "chassis", Kind: Equipment, Description: "a blade chassis", Parents: rackable, Height: 10, Units: 16,
			Attrs: withDevice(map[string]AttrSpec{"units": positive("blade slots")}),
			Ports: []PortSpec{namedPorts("console", "console"), rangePorts("power", 1, 4)}},
		{Name: "server", Kind: Equipment, Description: "a server", Parents: []string{"rack", "chassis", "room"}, Height: 1, Attrs: withDevice(nil),
			Ports: []PortSpec{namedPorts("nic", "eth0", "eth1"), namedPorts("console", "console"), namedPorts("power", "psu1")}},
		{Name: "switch", Kind: Equipment, Description: "a network switch", Parents: []string{"rack", "chassis"}, Height: 1, Attrs: withDevice(nil),
			Ports: []PortSpec{rangePorts("nic", 1, 48), namedPorts("console", "console"), namedPorts("power", "psu1")}},
		{Name: "router", Kind: Equipment, Description: "a router", Parents: rackable, Height: 2, Attrs: withDevice(nil),
			Ports: []PortSpec{{Type: "nic", Prefix: "ge-0/0/", From: 0, To: 23}, namedPorts("console", "console"), namedPorts("power", "psu1", "psu2")}},
		{Name: "pdu", Kind: Equipment, Description: "a power distribution unit", Parents: rackable, Height: 2, Attrs: withDevice(nil),
			Ports: []PortSpec{rangePorts("power", 1, 24), namedPorts("nic", "mgmt")}},
		{Name: "console-server", Kind: Equipment, Description: "a serial console server", Parents: rackable, Height: 1, Attrs: withDevice(nil),
			Ports: []PortSpec{rangePorts("console", 1, 48), namedPorts("nic", "mgmt"), namedPorts("power", "psu1")}},
		{Name: "vm", Kind: Equipment, Description: "a virtual machine", Parents: []string{"server"}, Attrs: withDevice(nil),
			Ports: []PortSpec{namedPorts("nic", "eth0", "eth1")}},
		{Name: "ipblock", Kind: Resource, Description: "a block of IP addresses", Parents: []string{"ipblock"},
			Attrs: map[string]AttrSpec{"cidr": {Type: TypeCIDR, Description: "the network, e.g. 10.0.3.0/24"}, "gateway": {Type: TypeIP}, "vlan": {Type: TypeInt}}},
		{Name: "vlan", Kind: Resource, Description: "a VLAN", Attrs: map[string]AttrSpec{"vid": {Type: TypeInt, Min: int64p(1)}}},
		{Name: "namemanager", Kind: Resource, Description: "hands out names like server0001",
			Attrs: map[string]AttrSpec{"basename": {Type: TypeString}, "digits": positive("zero-padded digits"), "next": {Type: TypeInt, Min: int64p(0)}}},
		{Name: "pool", Kind: Group, Description: "a grouping of things",
			Attrs: map[string]AttrSpec{"exclusive": {Type: TypeBool, Description: "members may be in no other pool"}, "unique": {Type: TypeBool, Description: "a thing may be in at most one unique pool"}}},
		{Name: "class", Kind: Group, Description: "what a thing is or has installed (FAI-style)"},
		{Name: "role", Kind: Group, Description: "the job a thing does"},
		{Name: "service", Kind: Group, Description: "an instance of a role"},
	}
	for _, d := range builtins {
		if err := r.Register(d); err != nil {
			panic(fmt.Sprintf("built-in driver: %v", err))
		}
	}
	return r
}
