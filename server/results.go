package server

import (
	"net/http"

	"github.com/clusto/clusto/entity"
)

// resultsPage is the answer of a query: full entities, the total number of
// matches and the cursor of the next page ("" on the last).
type resultsPage struct {
	Results    []*entity.Entity `json:"results"`
	Total      int              `json:"total"`
	NextCursor string           `json:"next_cursor"`
}

// entities reads the named entities in full, in the order given, as of
// change at (0: now). When at is 0 an entity deleted since the names were
// found is left out; pass the change the names were found at to read them
// exactly as they were.
func (s *Server) entities(r *http.Request, names []string, at int64) ([]*entity.Entity, error) {
	out := make([]*entity.Entity, 0, len(names))
	for _, n := range names {
		e, err := s.store.GetAt(r.Context(), n, at)
		if at == 0 && entity.IsKind(err, entity.KindNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// writeResults answers {"results":[entity...],"total":N,"next_cursor":"..."}
// for a page of entity names, as the query endpoints do.
func (s *Server) writeResults(w http.ResponseWriter, r *http.Request, names []string, at int64, total int, nextCursor string) error {
	es, err := s.entities(r, names, at)
	if err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, resultsPage{Results: es, Total: total, NextCursor: nextCursor})
}
