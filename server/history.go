package server

import (
	"math"
	"net/http"

	"github.com/clusto/clusto/entity"
)

// MaxPage is the most changes one history or change-log page holds.
const MaxPage = 1000

// page is the page of the change log that changes (at most a page's
// worth, after since) make: Next is the last change listed, or since when
// there is none.
func page(changes []entity.Change, since int64) entity.Changes {
	p := entity.Changes{Changes: changes, Next: since}
	if n := len(changes); n > 0 {
		p.Next = changes[n-1].Number
	}
	return p
}

func pageParams(r *http.Request) (since int64, limit int, err error) {
	if since, err = intParam(r, "since", 0, math.MaxInt64, 0); err != nil {
		return 0, 0, err
	}
	l, err := intParam(r, "limit", 1, MaxPage, 100)
	return since, int(l), err
}

// GET /entities/{name}/history[?since=N][&limit=M]
func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "name")
	if err != nil {
		return err
	}
	since, limit, err := pageParams(r)
	if err != nil {
		return err
	}
	changes, err := s.store.History(r.Context(), name, since, limit)
	if err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, page(changes, since))
}

// GET /changes[?since=N][&limit=M]
func (s *Server) changes(w http.ResponseWriter, r *http.Request) error {
	since, limit, err := pageParams(r)
	if err != nil {
		return err
	}
	changes, err := s.store.Changes(r.Context(), since, limit)
	if err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, page(changes, since))
}
