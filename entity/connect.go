package entity

// Placement says where a child goes in its parent: a position in rack
// units (1 is the bottom unit) and a height. Both are optional.
type Placement struct {
	Position *int64 `json:"position,omitempty"`
	Height   *int64 `json:"height,omitempty"`
}

// Endpoint is one end of a cable: an entity and one of its ports.
type Endpoint struct {
	Name string `json:"name"`
	Port string `json:"port"`
}

func (e Endpoint) String() string {
	if e.Port == "" {
		return e.Name
	}
	return e.Name + ":" + e.Port
}

// Location is where an entity physically is and what it is plugged into:
// one line per link of its own, in port order, then one line per step of
// its containment path up to the top, each both structured and as text.
type Location struct {
	Entity string `json:"entity"`
	Driver string `json:"driver"`
	// Path is the entity followed by its containers, innermost first.
	Path  []string       `json:"path"`
	Lines []LocationLine `json:"lines"`
}

// Location line relations.
const (
	RelConnected = "connected"
	RelIn        = "in"
)

// LocationLine is one fact about where something is. For "connected",
// Port is the subject's port and Peer/PeerPort the far end of the cable;
// for "in", Peer is the container and Position/Height the rack units
// taken, when the container has units.
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

// Feed is a link from one of an entity's ports to the device that serves
// it: the console server and its port, or the PDU and its outlet.
type Feed struct {
	Port       string `json:"port"`
	Peer       string `json:"peer"`
	PeerDriver string `json:"peer_driver"`
	PeerPort   string `json:"peer_port"`
}
