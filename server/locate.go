package server

import (
	"net/http"

	"github.com/clusto/clusto/entity"
)

// GET /entities/{name}/locate[?at=N]
func (s *Server) locate(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	at, err := s.atParam(r)
	if err != nil {
		return err
	}
	loc, err := s.store.Locate(r.Context(), name, at)
	if err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, loc)
}

type consoleLine struct {
	Port          string `json:"port"`
	ConsoleServer string `json:"console_server"`
	ConsolePort   string `json:"console_port"`
	Driver        string `json:"driver"`
}

type powerLine struct {
	Port   string `json:"port"`
	PDU    string `json:"pdu"`
	Outlet string `json:"outlet"`
	Driver string `json:"driver"`
}

// GET /entities/{name}/console[?at=N]: {"entity","consoles":[...]}
func (s *Server) console(w http.ResponseWriter, r *http.Request) error {
	name, feeds, err := s.upstream(r, "console")
	if err != nil {
		return err
	}
	out := make([]consoleLine, len(feeds))
	for i, f := range feeds {
		out[i] = consoleLine{Port: f.Port, ConsoleServer: f.Peer, ConsolePort: f.PeerPort, Driver: f.PeerDriver}
	}
	return s.writeJSON(w, r, http.StatusOK, struct {
		Entity   string        `json:"entity"`
		Consoles []consoleLine `json:"consoles"`
	}{name, out})
}

// GET /entities/{name}/power[?at=N]: {"entity","power":[...]}
func (s *Server) power(w http.ResponseWriter, r *http.Request) error {
	name, feeds, err := s.upstream(r, "power")
	if err != nil {
		return err
	}
	out := make([]powerLine, len(feeds))
	for i, f := range feeds {
		out[i] = powerLine{Port: f.Port, PDU: f.Peer, Outlet: f.PeerPort, Driver: f.PeerDriver}
	}
	return s.writeJSON(w, r, http.StatusOK, struct {
		Entity string      `json:"entity"`
		Power  []powerLine `json:"power"`
	}{name, out})
}

func (s *Server) upstream(r *http.Request, portType string) (string, []entity.Feed, error) {
	name, err := pathName(r, "name")
	if err != nil {
		return "", nil, err
	}
	at, err := s.atParam(r)
	if err != nil {
		return "", nil, err
	}
	feeds, err := s.store.Upstream(r.Context(), name, portType, at)
	return name, feeds, err
}
