package server

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// POST /ipblocks/{name}/allocate
func (s *Server) allocateIP(w http.ResponseWriter, r *http.Request) error {
	block, err := pathName(r, "name")
	if err != nil {
		return err
	}
	return s.keyedWrite(w, r, func(tx *store.Tx) (int, any, error) {
		var req entity.IPAllocateRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		if err := entity.ValidateName(req.Entity); err != nil {
			return 0, nil, entity.Errorf(entity.KindInvalid, "entity: %s", err.Error())
		}
		allocs, err := tx.AllocateIP(entity.IPRequest{Block: block, Entity: req.Entity, Count: req.Count, Address: req.Address, Interface: req.Interface})
		if err != nil {
			return 0, nil, err
		}
		s.metrics.allocs.WithLabelValues("ip").Inc()
		return http.StatusCreated, entity.Allocations{Allocations: allocs}, nil
	})
}

// DELETE /ipblocks/{name}/allocations/{address}
func (s *Server) releaseIP(w http.ResponseWriter, r *http.Request) error {
	block, err := pathName(r, "name")
	if err != nil {
		return err
	}
	addr, err := pathVar(r, "address")
	if err != nil {
		return err
	}
	if err := noIfMatch(r); err != nil {
		return err
	}
	var released entity.Allocation
	if _, err := s.update(w, r, func(tx *store.Tx) error {
		var err error
		released, err = tx.ReleaseIP(block, addr)
		return err
	}); err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, entity.Allocations{Allocations: []entity.Allocation{released}})
}

// GET /ipblocks/{name}[?after=ADDRESS][&limit=N]
func (s *Server) getBlock(w http.ResponseWriter, r *http.Request) error {
	block, err := pathName(r, "name")
	if err != nil {
		return err
	}
	after, _, err := queryValue(r, "after")
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 1, 1000, 100)
	if err != nil {
		return err
	}
	var st *entity.BlockStatus
	if err := s.store.View(r.Context(), func(tx *store.View) error {
		var err error
		st, err = tx.BlockStatus(block, after, int(limit))
		return err
	}); err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, st)
}

// POST /racks/{name}/allocate
func (s *Server) allocateRack(w http.ResponseWriter, r *http.Request) error {
	rack, err := pathName(r, "name")
	if err != nil {
		return err
	}
	return s.keyedWrite(w, r, func(tx *store.Tx) (int, any, error) {
		var req entity.RackAllocateRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		if err := entity.ValidateName(req.Entity); err != nil {
			return 0, nil, entity.Errorf(entity.KindInvalid, "entity: %s", err.Error())
		}
		if _, err := tx.AllocateRackUnits(entity.RackRequest{Rack: rack, Entity: req.Entity, Height: req.Height, Position: req.Position}); err != nil {
			return 0, nil, err
		}
		e, err := tx.Get(req.Entity)
		if err != nil {
			return 0, nil, err
		}
		s.metrics.allocs.WithLabelValues("rack").Inc()
		return http.StatusCreated, entity.EntitiesAnswer{Results: []entity.Entity{*e}}, nil
	})
}

// GET /racks/{name}/elevation
func (s *Server) elevation(w http.ResponseWriter, r *http.Request) error {
	rack, err := pathName(r, "name")
	if err != nil {
		return err
	}
	var el *entity.Elevation
	if err := s.store.View(r.Context(), func(tx *store.View) error {
		var err error
		el, err = tx.Elevation(rack)
		return err
	}); err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, el)
}

// attrMap turns {"key": value, ...} into attributes, keys sorted; a JSON
// list gives several values of one key.
func attrMap(m map[string]json.RawMessage) ([]entity.Attr, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []entity.Attr
	for _, k := range keys {
		if err := entity.ValidateKey("key", k); err != nil {
			return nil, err
		}
		raw := m[k]
		var list []json.RawMessage
		if len(raw) > 0 && raw[0] == '[' && json.Unmarshal(raw, &list) == nil {
			for _, item := range list {
				v, err := entity.ValueFromJSON(item, "")
				if err != nil {
					return nil, entity.Errorf(entity.KindInvalid, "attribute %s: %s", k, err.Error())
				}
				out = append(out, entity.Attr{Key: k, Value: v})
			}
			continue
		}
		v, err := entity.ValueFromJSON(raw, "")
		if err != nil {
			return nil, entity.Errorf(entity.KindInvalid, "attribute %s: %s", k, err.Error())
		}
		out = append(out, entity.Attr{Key: k, Value: v})
	}
	return out, nil
}

// POST /names/{manager}/allocate
func (s *Server) allocateNames(w http.ResponseWriter, r *http.Request) error {
	manager, err := pathName(r, "manager")
	if err != nil {
		return err
	}
	return s.keyedWrite(w, r, func(tx *store.Tx) (int, any, error) {
		var req entity.NamesAllocateRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		if req.Driver == "" {
			return 0, nil, entity.Errorf(entity.KindInvalid, "driver is missing: say what the new entities are (\"driver\": \"server\")")
		}
		attrs, err := attrMap(req.Attrs)
		if err != nil {
			return 0, nil, err
		}
		names, err := tx.AllocateNames(entity.NameRequest{Manager: manager, Driver: req.Driver, Count: req.Count, Attrs: attrs})
		if err != nil {
			return 0, nil, err
		}
		answer, err := entitiesOf(tx, names)
		if err != nil {
			return 0, nil, err
		}
		s.metrics.allocs.WithLabelValues("name").Inc()
		return http.StatusCreated, answer, nil
	})
}

// entitiesOf is the answer of an allocation that handed out the entities
// named: each of them read in full, in that order.
func entitiesOf(tx *store.Tx, names []string) (entity.EntitiesAnswer, error) {
	ents, err := tx.GetMany(names)
	if err != nil {
		return entity.EntitiesAnswer{}, err
	}
	out := make([]entity.Entity, 0, len(ents))
	for _, e := range ents {
		out = append(out, *e)
	}
	return entity.EntitiesAnswer{Results: out}, nil
}
