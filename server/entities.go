package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// attrIn is an attribute as a request gives it. Value keeps its JSON type
// (numbers and booleans stay numbers and booleans) unless Type names one.
// Number is an integer, or, when adding a value, "next" for the key's next
// free number.
type attrIn struct {
	Key    string           `json:"key"`
	Subkey string           `json:"subkey"`
	Number json.RawMessage  `json:"number"`
	Value  json.RawMessage  `json:"value"`
	Type   entity.ValueType `json:"type"`
}

// toAttr validates the attribute; next reports a "number":"next".
func (a attrIn) toAttr(allowNext bool) (attr entity.Attr, next bool, err error) {
	if err := entity.ValidateKey("key", a.Key); err != nil {
		return attr, false, err
	}
	if a.Subkey != "" {
		if err := entity.ValidateKey("subkey", a.Subkey); err != nil {
			return attr, false, err
		}
	}
	attr.Key, attr.Subkey = a.Key, a.Subkey
	if n := bytes.TrimSpace(a.Number); len(n) > 0 && string(n) != "null" {
		if allowNext && string(n) == `"next"` {
			next = true
		} else {
			var num int64
			if err := json.Unmarshal(n, &num); err != nil || num < 0 {
				if allowNext {
					return attr, false, entity.Errorf(entity.KindInvalid, "attribute %s: number must be a whole number, 0 or more, or \"next\"", a.Key)
				}
				return attr, false, entity.Errorf(entity.KindInvalid, "attribute %s: number must be a whole number, 0 or more", a.Key)
			}
			attr.Number = entity.N(num)
		}
	}
	v, err := entity.ValueFromJSON(a.Value, a.Type)
	if err != nil {
		return attr, false, entity.Errorf(entity.KindInvalid, "attribute %s: %s", a.Key, err.Error())
	}
	attr.Value = v
	return attr, next, nil
}

type createRequest struct {
	Name   string   `json:"name"`
	Driver string   `json:"driver"`
	Attrs  []attrIn `json:"attrs"`
}

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
	var req createRequest
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
		attr, _, err := a.toAttr(false)
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
	var e *entity.Entity
	if merged {
		e, err = s.store.GetMergedAt(r.Context(), name, at)
	} else {
		e, err = s.store.GetAt(r.Context(), name, at)
	}
	if err != nil {
		return err
	}
	return s.writeEntity(w, r, http.StatusOK, e)
}

type renameRequest struct {
	Name string `json:"name"`
}

// PATCH /entities/{name} {"name":"new"}
func (s *Server) renameEntity(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	var req renameRequest
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
	return s.writeJSON(w, r, http.StatusOK, struct {
		Deleted string `json:"deleted"`
		Change  int64  `json:"change"`
	}{name, change})
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
