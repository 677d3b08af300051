package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func (s *Server) writeAttrs(w http.ResponseWriter, r *http.Request, status int, e *entity.Entity, resp entity.AttrsAnswer) error {
	resp.Entity, resp.Version, resp.Attrs = e.Name, e.Version, e.Attrs
	body, err := encodeJSON(resp)
	if err != nil {
		return err
	}
	return s.writeTagged(w, r, status, entityTag(e.Version, body), body)
}

// GET /entities/{name}/attrs[?key=K[&subkey=S]][&at=N]
func (s *Server) getAttrs(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	key, hasKey, err := queryValue(r, "key")
	if err != nil {
		return err
	}
	if hasKey {
		if err := entity.ValidateKey("key", key); err != nil {
			return err
		}
	}
	subkey, hasSubkey, err := queryValue(r, "subkey")
	if err != nil {
		return err
	}
	if hasSubkey {
		if !hasKey {
			return entity.Errorf(entity.KindInvalid, "subkey needs a key: ?key=K&subkey=S")
		}
		if subkey != "" {
			if err := entity.ValidateKey("subkey", subkey); err != nil {
				return err
			}
		}
	}
	at, err := s.atParam(r)
	if err != nil {
		return err
	}
	e, err := s.store.GetAt(r.Context(), name, at)
	if err != nil {
		return err
	}
	if hasKey {
		kept := []entity.Attr{}
		for _, a := range e.Attrs {
			if a.Key == key && (!hasSubkey || a.Subkey == subkey) {
				kept = append(kept, a)
			}
		}
		e.Attrs = kept
	}
	return s.writeAttrs(w, r, http.StatusOK, e, entity.AttrsAnswer{})
}

// POST /entities/{name}/attrs {"key","subkey","number","value","type"}
func (s *Server) addAttr(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	var req entity.AttrInput
	if err := decode(r, &req); err != nil {
		return err
	}
	a, next, err := req.Attr(true)
	if err != nil {
		return err
	}
	var e *entity.Entity
	if _, err := s.update(w, r, func(tx *store.Tx) error {
		if err := checkIfMatch(tx, r, name); err != nil {
			return err
		}
		var err error
		if next {
			a, err = tx.AddNumberedAttr(name, a)
		} else {
			a, err = tx.AddAttr(name, a)
		}
		if err != nil {
			return err
		}
		e, err = tx.Get(name)
		return err
	}); err != nil {
		return err
	}
	return s.writeAttrs(w, r, http.StatusCreated, e, entity.AttrsAnswer{Added: &a})
}

// PUT /entities/{name}/attrs/{key} {"values":[...]}
func (s *Server) setAttr(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	key, err := pathVar(r, "key")
	if err != nil {
		return err
	}
	if err := entity.ValidateKey("key", key); err != nil {
		return err
	}
	var req entity.SetAttrRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Values) == 0 {
		return entity.Errorf(entity.KindInvalid, "values is required and must hold at least one value (DELETE the key to remove it)")
	}
	if req.Subkey != nil && *req.Subkey != "" {
		if err := entity.ValidateKey("subkey", *req.Subkey); err != nil {
			return err
		}
	}
	if req.Number != nil && *req.Number < 0 {
		return entity.Errorf(entity.KindInvalid, "number must be 0 or more")
	}
	values := make([]entity.Value, len(req.Values))
	for i, raw := range req.Values {
		v, err := entity.ValueFromJSON(raw, req.Type)
		if err != nil {
			return fmt.Errorf("values[%d]: %w", i, err)
		}
		values[i] = v
	}
	sel := entity.AttrSelector{Key: key, Subkey: req.Subkey, Number: req.Number}
	var e *entity.Entity
	if _, err := s.update(w, r, func(tx *store.Tx) error {
		if err := checkIfMatch(tx, r, name); err != nil {
			return err
		}
		if _, err := tx.SetAttr(name, sel, values); err != nil {
			return err
		}
		var err error
		e, err = tx.Get(name)
		return err
	}); err != nil {
		return err
	}
	return s.writeAttrs(w, r, http.StatusOK, e, entity.AttrsAnswer{})
}

// DELETE /entities/{name}/attrs/{key}[?value=V][&subkey=S][&number=N]
func (s *Server) delAttr(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	key, err := pathVar(r, "key")
	if err != nil {
		return err
	}
	if err := entity.ValidateKey("key", key); err != nil {
		return err
	}
	sel := entity.AttrSelector{Key: key}
	if v, ok, err := queryValue(r, "value"); err != nil {
		return err
	} else if ok {
		sel.Value = &v
	}
	if sub, ok, err := queryValue(r, "subkey"); err != nil {
		return err
	} else if ok {
		if sub != "" {
			if err := entity.ValidateKey("subkey", sub); err != nil {
				return err
			}
		}
		sel.Subkey = &sub
	}
	if n, ok, err := queryValue(r, "number"); err != nil {
		return err
	} else if ok {
		num, perr := strconv.ParseInt(n, 10, 64)
		if perr != nil || num < 0 {
			return entity.Errorf(entity.KindInvalid, "query parameter number=%q must be a whole number, 0 or more", n)
		}
		sel.Number = &num
	}
	var e *entity.Entity
	var removed []entity.Attr
	if _, err := s.update(w, r, func(tx *store.Tx) error {
		if err := checkIfMatch(tx, r, name); err != nil {
			return err
		}
		var err error
		if removed, err = tx.DelAttr(name, sel); err != nil {
			return err
		}
		e, err = tx.Get(name)
		return err
	}); err != nil {
		return err
	}
	return s.writeAttrs(w, r, http.StatusOK, e, entity.AttrsAnswer{Removed: removed})
}
