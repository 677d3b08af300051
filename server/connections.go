package server

import (
	"net/http"
	"strings"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// POST /entities/{name}/children {"child","position","height"}: physical
// containment, or membership when the parent is a group. Answers the parent.
func (s *Server) insertChild(w http.ResponseWriter, r *http.Request) error {
	parent, err := pathName(r, "name")
	if err != nil {
		return err
	}
	var req entity.InsertRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Child == "" {
		return entity.Errorf(entity.KindInvalid, "child is required: the name of the entity to put in %s", parent)
	}
	if err := entity.ValidateName(req.Child); err != nil {
		return err
	}
	if req.Position != nil && *req.Position < 1 {
		return entity.Errorf(entity.KindInvalid, "position %d must be 1 or more (1 is the bottom unit)", *req.Position)
	}
	if req.Height != nil && *req.Height < 1 {
		return entity.Errorf(entity.KindInvalid, "height %d must be 1 or more", *req.Height)
	}
	var e *entity.Entity
	if _, err := s.update(w, r, func(tx *store.Tx) error {
		if err := checkIfMatch(tx, r, parent); err != nil {
			return err
		}
		if _, err := tx.Insert(parent, req.Child, entity.Placement{Position: req.Position, Height: req.Height}); err != nil {
			return err
		}
		var err error
		e, err = tx.Get(parent)
		return err
	}); err != nil {
		return err
	}
	return s.writeEntity(w, r, http.StatusCreated, e)
}

// DELETE /entities/{name}/children/{child}: answers the parent.
func (s *Server) removeChild(w http.ResponseWriter, r *http.Request) error {
	parent, err := pathName(r, "name")
	if err != nil {
		return err
	}
	child, err := pathName(r, "child")
	if err != nil {
		return err
	}
	var e *entity.Entity
	if _, err := s.update(w, r, func(tx *store.Tx) error {
		if err := checkIfMatch(tx, r, parent); err != nil {
			return err
		}
		if err := tx.Remove(parent, child); err != nil {
			return err
		}
		var err error
		e, err = tx.Get(parent)
		return err
	}); err != nil {
		return err
	}
	return s.writeEntity(w, r, http.StatusOK, e)
}

func validPort(field, port string, required bool) error {
	if port == "" {
		if required {
			return entity.Errorf(entity.KindInvalid, "%s is required", field)
		}
		return nil
	}
	if len(port) > 128 || strings.ContainsAny(port, " \t\r\n:") {
		return entity.Errorf(entity.KindInvalid, "%s %q is not a port name (no spaces or ':', at most 128 bytes)", field, port)
	}
	return nil
}

// validCable checks a cable a request gives: two entity names and, when
// portsRequired, their ports.
func validCable(l entity.Cable, portsRequired bool) error {
	if l.Type != "" {
		return entity.Errorf(entity.KindInvalid, "type is not given in a request: it is the ports' type, which their drivers declare")
	}
	for _, f := range []struct{ field, name string }{{"a", l.A}, {"b", l.B}} {
		if f.name == "" {
			return entity.Errorf(entity.KindInvalid, "%s is required: the name of an entity", f.field)
		}
		if err := entity.ValidateName(f.name); err != nil {
			return entity.Errorf(entity.KindInvalid, "%s: %s", f.field, err.Error())
		}
	}
	if err := validPort("a_port", l.APort, portsRequired); err != nil {
		return err
	}
	return validPort("b_port", l.BPort, portsRequired)
}

// findLink returns the link of e to peer that matches the ports given
// (either may be empty), if there is exactly one.
func findLink(e *entity.Entity, port, peer, peerPort string) (entity.Link, bool) {
	var found []entity.Link
	for _, l := range e.Links {
		if l.Peer == peer && (port == "" || l.Port == port) && (peerPort == "" || l.PeerPort == peerPort) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return entity.Link{}, false
	}
	return found[0], true
}

// POST /links {"a","a_port","b","b_port"}
func (s *Server) link(w http.ResponseWriter, r *http.Request) error {
	if err := noIfMatch(r); err != nil {
		return err
	}
	var req entity.Cable
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validCable(req, false); err != nil {
		return err
	}
	made := req
	change, err := s.update(w, r, func(tx *store.Tx) error {
		ea, eb, err := tx.ConnectAuto(entity.Endpoint{Name: req.A, Port: req.APort}, entity.Endpoint{Name: req.B, Port: req.BPort})
		if err != nil {
			return err
		}
		made.APort, made.BPort = ea.Port, eb.Port
		a, err := tx.Get(req.A)
		if err != nil {
			return err
		}
		if l, ok := findLink(a, made.APort, req.B, made.BPort); ok {
			made.Type = l.Type
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusCreated, entity.LinkAnswer{Link: made, Change: change})
}

// DELETE /links {"a","a_port","b","b_port"}: ports may be left out when the
// two entities share one link.
func (s *Server) unlink(w http.ResponseWriter, r *http.Request) error {
	if err := noIfMatch(r); err != nil {
		return err
	}
	var req entity.Cable
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validCable(req, false); err != nil {
		return err
	}
	removed := req
	change, err := s.update(w, r, func(tx *store.Tx) error {
		a, err := tx.Get(req.A)
		if err != nil {
			return err
		}
		if l, ok := findLink(a, req.APort, req.B, req.BPort); ok {
			removed.APort, removed.BPort, removed.Type = l.Port, l.PeerPort, l.Type
		}
		return tx.Disconnect(entity.Endpoint{Name: req.A, Port: req.APort}, entity.Endpoint{Name: req.B, Port: req.BPort})
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, entity.UnlinkAnswer{Unlinked: removed, Change: change})
}
