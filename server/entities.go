package server

import (
	"fmt"
	"net/http"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func (s *Server) validDriver(name string) error {
	if name == "" {
		return entity.Errorf(entity.KindInvalid, "driver is required (GET %s/drivers lists them)", APIPrefix)
	}
	if _, ok := s.store.Drivers().Lookup(name); !ok {
		return entity.Errorf(entity.KindInvalid, "unknown driver %q (GET %s/drivers lists them)", name, APIPrefix)
	}
	return nil
}

// POST /entities
func (s *Server) createEntity(w http.ResponseWriter, r *http.Request) error {
	if err := noIfMatch(r); err != nil {
		return err
	}
	var req entity.CreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := entity.ValidateName(req.Name); err != nil {
		return err
	}
	if err := s.validDriver(req.Driver); err != nil {
		return err
	}
	n := entity.NewEntity{Name: req.Name, Driver: req.Driver, Attrs: make([]entity.Attr, 0, len(req.Attrs))}
	for i, a := range req.Attrs {
		attr, _, err := a.Attr(false)
		if err != nil {
			return fmt.Errorf("attrs[%d]: %w", i, err)
		}
		n.Attrs = append(n.Attrs, attr)
	}
	var e *entity.Entity
	if _, err := s.update(w, r, func(tx *store.Tx) error {
		if err := tx.Create(n); err != nil {
			return err
		}
		var err error
		e, err = tx.Get(n.Name)
		return err
	}); err != nil {
		return err
	}
	w.Header().Set("Location", entityURL(e.Name))
	return s.writeEntity(w, r, http.StatusCreated, e)
}

// GET /entities/{name}[?at=N][&merged=true]
func (s *Server) getEntity(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	at, err := s.atParam(r)
	if err != nil {
		return err
	}
	merged, err := boolParam(r, "merged")
	if err != nil {
		return err
	}
	if merged {
		e, err := s.store.GetMergedAt(r.Context(), name, at)
		if err != nil {
			return err
		}
		return s.writeEntity(w, r, http.StatusOK, e)
	}
	answers, err := s.entityAnswers(r, []string{name}, at)
	if err != nil {
		return err
	}
	if len(answers) == 0 {
		return store.NotFoundAmong([]string{name}, nil, at)
	}
	return s.writeTagged(w, r, http.StatusOK, answers[0].etag(), answers[0].body)
}

// PATCH /entities/{name} {"name":"new"}
func (s *Server) renameEntity(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	var req entity.RenameRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return entity.Errorf(entity.KindInvalid, "name is required: PATCH renames, {\"name\":\"new-name\"}")
	}
	if err := entity.ValidateName(req.Name); err != nil {
		return err
	}
	var e *entity.Entity
	if _, err := s.update(w, r, func(tx *store.Tx) error {
		if err := checkIfMatch(tx, r, name); err != nil {
			return err
		}
		if err := tx.Rename(name, req.Name); err != nil {
			return err
		}
		e, err = tx.Get(req.Name)
		return err
	}); err != nil {
		return err
	}
	w.Header().Set("Location", entityURL(e.Name))
	return s.writeEntity(w, r, http.StatusOK, e)
}

// DELETE /entities/{name}[?cascade=true]
func (s *Server) deleteEntity(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	cascade, err := boolParam(r, "cascade")
	if err != nil {
		return err
	}
	change, err := s.update(w, r, func(tx *store.Tx) error {
		if err := checkIfMatch(tx, r, name); err != nil {
			return err
		}
		return tx.Delete(name, cascade)
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, entity.Deleted{Deleted: name, Change: change})
}

// GET /lookup?term=T
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) error {
	term, ok, err := queryValue(r, "term")
	if err != nil {
		return err
	}
	if !ok || term == "" {
		return entity.Errorf(entity.KindInvalid, "query parameter term is required: a name, IP address, MAC address or serial number")
	}
	e, m, err := s.store.Lookup(r.Context(), term)
	if err != nil {
		return err
	}
	w.Header().Set("X-Clusto-Matched-By", m.By)
	return s.writeEntity(w, r, http.StatusOK, e)
}
