package server

import (
	"net/http"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// GET /whoami: the caller's token name and role.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	i := infoOf(r)
	return s.writeJSON(w, r, http.StatusOK, entity.Whoami{Name: i.actor, Role: i.role})
}

// GET /drivers
func (s *Server) listDrivers(w http.ResponseWriter, r *http.Request) error {
	return s.writeJSON(w, r, http.StatusOK, entity.DriverList{Drivers: s.store.Drivers().All()})
}

// GET /drivers/{driver}
func (s *Server) getDriver(w http.ResponseWriter, r *http.Request) error {
	name, err := pathVar(r, "driver")
	if err != nil {
		return err
	}
	d, ok := s.store.Drivers().Lookup(name)
	if !ok {
		return entity.Errorf(entity.KindNotFound, "no driver named %q (GET %s/drivers lists them)", name, APIPrefix)
	}
	ports := d.PortList()
	if ports == nil {
		ports = []drivers.Port{}
	}
	return s.writeJSON(w, r, http.StatusOK, entity.DriverView{Driver: d, PortList: ports})
}

// POST /drivers/reload: read the drivers file again. Drivers it defines
// are added or replaced; all of them load or none do.
func (s *Server) reloadDrivers(w http.ResponseWriter, r *http.Request) error {
	if s.opts.DriversFile == "" {
		return entity.Errorf(entity.KindConflict, "the server was started without a drivers file (--drivers); there is nothing to reload")
	}
	if err := s.store.ReloadDrivers(r.Context(), s.opts.DriversFile); err != nil {
		return err
	}
	s.log.Info("drivers reloaded", "request_id", requestIDOf(r), "actor", actorOf(r), "file", s.opts.DriversFile)
	return s.writeJSON(w, r, http.StatusOK, entity.DriversReloaded{Drivers: s.store.Drivers().Names()})
}

// GET /tokens
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	toks, err := s.store.Tokens(r.Context())
	if err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, entity.TokenList{Tokens: toks})
}

// POST /tokens {"name","role"}: the token is in this answer and nowhere else.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req entity.TokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := entity.ValidateTokenName(req.Name); err != nil {
		return err
	}
	role, err := entity.ParseRole(req.Role)
	if err != nil {
		return err
	}
	secret, tok, err := s.store.CreateToken(r.Context(), callerOf(r), req.Name, role)
	if err != nil {
		return err
	}
	s.log.Info("token created", "request_id", requestIDOf(r), "actor", actorOf(r), "token", tok.Name, "role", tok.Role)
	return s.writeJSON(w, r, http.StatusCreated, entity.NewToken{Token: tok, Secret: secret})
}

// DELETE /tokens/{token}
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	name, err := pathVar(r, "token")
	if err != nil {
		return err
	}
	if err := entity.ValidateTokenName(name); err != nil {
		return err
	}
	if err := s.store.RevokeToken(r.Context(), callerOf(r), name); err != nil {
		return err
	}
	s.log.Info("token revoked", "request_id", requestIDOf(r), "actor", actorOf(r), "token", name)
	return s.writeJSON(w, r, http.StatusOK, entity.Revoked{Revoked: name})
}

// callerOf is who a request acts as, for the token audit list.
func callerOf(r *http.Request) entity.Caller {
	return entity.Caller{Actor: actorOf(r), RequestID: requestIDOf(r)}
}

// GET /tokens/audit[?since=N][&limit=M]: who created and revoked which
// tokens, oldest first.
func (s *Server) tokenAudit(w http.ResponseWriter, r *http.Request) error {
	since, limit, err := pageParams(r)
	if err != nil {
		return err
	}
	events, err := s.store.TokenAudit(r.Context(), since, limit)
	if err != nil {
		return err
	}
	p := entity.TokenAudit{Events: events, Next: since}
	if n := len(events); n > 0 {
		p.Next = events[n-1].ID
	}
	return s.writeJSON(w, r, http.StatusOK, p)
}
