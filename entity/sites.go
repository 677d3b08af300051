package entity

// Site is one place of the containment tree (a datacenter, a room, a row,
// a rack) with what lies under it: the racks at or below it (the
// containers with rack units: a rack, or a chassis standing on its own),
// the things in those racks, and their rack units, summed.
type Site struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// Rack says the place itself holds devices at unit positions.
	Rack bool `json:"rack"`
	// Children says something is physically inside it.
	Children bool `json:"children"`
	// Racks counts the racks at or under it (1 for a rack itself).
	Racks int64 `json:"racks"`
	// Devices counts the things directly in those racks, placed or not.
	Devices int64 `json:"devices"`
	// Units is the racks' units; Used how many of them devices take (as
	// the elevation counts them: Units minus its Free).
	Units int64 `json:"units"`
	Used  int64 `json:"used"`
}
