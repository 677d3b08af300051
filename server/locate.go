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

// GET /entities/{name}/console[?at=N]: {"entity","consoles":[...]}
func (s *Server) console(w http.ResponseWriter, r *http.Request) error {
	name, feeds, err := s.upstream(r, "console")
	if err != nil {
		return err
	}
	out := make([]entity.Console, len(feeds))
	for i, f := range feeds {
		out[i] = entity.Console{Port: f.Port, ConsoleServer: f.Peer, ConsolePort: f.PeerPort, Driver: f.PeerDriver}
	}
	return s.writeJSON(w, r, http.StatusOK, entity.Consoles{Entity: name, Consoles: out})
}

// GET /entities/{name}/power[?at=N]: {"entity","power":[...]}
func (s *Server) power(w http.ResponseWriter, r *http.Request) error {
	name, feeds, err := s.upstream(r, "power")
	if err != nil {
		return err
	}
	out := make([]entity.Outlet, len(feeds))
	for i, f := range feeds {
		out[i] = entity.Outlet{Port: f.Port, PDU: f.Peer, Outlet: f.PeerPort, Driver: f.PeerDriver}
	}
	return s.writeJSON(w, r, http.StatusOK, entity.Power{Entity: name, Power: out})
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
