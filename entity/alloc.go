package entity

import "math/big"

// Allocation is one address handed out from a block.
type Allocation struct {
	Address   string `json:"address"`
	Block     string `json:"block"`
	Entity    string `json:"entity"`
	Interface string `json:"interface"`
}

// BlockStatus describes a block's use. Size and Free are exact even for
// IPv6 (a /64 holds 2^64 addresses).
type BlockStatus struct {
	Name      string       `json:"name"`
	CIDR      string       `json:"cidr"`
	Gateway   string       `json:"gateway,omitempty"`
	Size      *big.Int     `json:"size"`
	Reserved  *big.Int     `json:"reserved"`
	Allocated int64        `json:"allocated"`
	Free      *big.Int     `json:"free"`
	Children  []string     `json:"children"`
	Parent    string       `json:"parent,omitempty"`
	Allocs    []Allocation `json:"allocations"`
}

// IPRequest asks for addresses from a block.
type IPRequest struct {
	Block     string
	Entity    string
	Count     int
	Address   string // an exact address instead of the lowest free
	Interface string
}

// MaxIPCount bounds one allocation request.
const MaxIPCount = 1024

// RackRequest asks for rack units for an entity.
type RackRequest struct {
	Rack     string
	Entity   string
	Height   *int64 // default: the entity's height
	Position *int64 // default: the lowest contiguous free range
}

// Unit is one rack unit in an elevation.
type Unit struct {
	Unit int64 `json:"unit"`
	// Device is the entity taking the unit; empty when free.
	Device string `json:"device,omitempty"`
	Driver string `json:"driver,omitempty"`
	// Base is the device's lowest unit (its position); Height its size.
	Base   int64 `json:"base,omitempty"`
	Height int64 `json:"height,omitempty"`
	Free   bool  `json:"free"`
}

// Elevation is a rack drawn as data: every unit from the top down.
type Elevation struct {
	Rack  string `json:"rack"`
	Units int64  `json:"units"`
	Free  int64  `json:"free"`
	Rows  []Unit `json:"rows"`
	// Unplaced lists children that are in the rack without a position.
	Unplaced []string `json:"unplaced"`
}

// NameRequest asks a name manager for new entities.
type NameRequest struct {
	Manager string
	Driver  string
	Count   int
	Attrs   []Attr
}

// MaxNameCount bounds one name allocation.
const MaxNameCount = 1000

// BlockCIDR is an IP block's name and network.
type BlockCIDR struct {
	Name string
	CIDR string
}
