package server

import (
	"math"
	"net/http"

	"github.com/clusto/clusto/entity"
)

// MaxPage is the most changes one history or change-log page holds.
const MaxPage = 1000

// changesPage is a page of the change log. Next is the number to pass as
// ?since= for the page after: the last change listed, or since itself when
// the page is empty, so that a poller can always send it back.
type changesPage struct {
	Changes []entity.Change `json:"changes"`
	Next    int64           `json:"next"`
}

func page(changes []entity.Change, since int64) changesPage {
	p := changesPage{Changes: changes, Next: since}
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
