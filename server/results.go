package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/clusto/clusto/entity"
)

// writeResults answers {"results":[entity...],"total":N,"next_cursor":"..."}
// for a page of entity names, as the query endpoints do: the named
// entities in full, in the order given, as of change at (0: now). When at
// is 0 an entity deleted since the names were found is left out; pass the
// change the names were found at to read them exactly as they were.
//
// The entities are read a chunk at a time (store.GetMany: a fixed number
// of statements per chunk, not per entity) and encoded as soon as they are
// read, so that the page is held about once, as JSON, and an answer that
// would pass Options.MaxAnswerBytes stops there (422) instead of growing
// without bound: a page of 1000 entities with large attributes is many
// megabytes. The bytes are those json.Encoder makes of an entity.Results.
func (s *Server) writeResults(w http.ResponseWriter, r *http.Request, names []string, at int64, total int, atLeast bool, nextCursor string) error {
	var buf bytes.Buffer
	buf.WriteString(`{"results":[`)
	first := true
	for start := 0; start < len(names); start += hydrateChunk {
		chunk := names[start:min(start+hydrateChunk, len(names))]
		bodies, err := s.entityBodies(r, chunk, at)
		if err != nil {
			return err
		}
		for _, b := range bodies {
			if !first {
				buf.WriteByte(',')
			}
			first = false
			buf.Write(b[:len(b)-1]) // without the encoder's newline
			if int64(buf.Len()) > s.opts.MaxAnswerBytes {
				return s.answerTooLarge("this query", "ask for a smaller page (limit) or fewer entities")
			}
		}
	}
	var tail bytes.Buffer
	tailEnc := json.NewEncoder(&tail)
	tailEnc.SetEscapeHTML(false)
	if err := tailEnc.Encode(struct {
		Total        int    `json:"total"`
		TotalAtLeast bool   `json:"total_at_least,omitempty"`
		NextCursor   string `json:"next_cursor"`
	}{total, atLeast, nextCursor}); err != nil {
		return entity.Internal("encode response", err)
	}
	// The tail object's members, without its opening brace, follow the list.
	buf.WriteString("],")
	buf.Write(tail.Bytes()[1:])
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return nil
}

// hydrateChunk is how many entities writeResults reads at once: enough
// that the statements per entity all but vanish, few enough that a chunk
// of large entities is not held in memory beside the whole answer.
const hydrateChunk = 100

// missingAt is the error of a name of names that GetMany did not find as
// of change at.
func missingAt(names []string, got []*entity.Entity, at int64) error {
	found := map[string]bool{}
	for _, e := range got {
		found[e.Name] = true
	}
	for _, n := range names {
		if !found[n] {
			return entity.Errorf(entity.KindNotFound, "no entity named %q as of change %d", n, at)
		}
	}
	return entity.Internal("read entities", fmt.Errorf("%d names, %d entities, none missing", len(names), len(got)))
}

// entityBodies is the encoded answers of the entities names as of change
// at (0: now), in order, each as GET /entities/{name} answers it (with
// its newline). Current ones come from the entity cache when it has them;
// the rest are read together (store.GetMany) and cached. An entity
// deleted since its name was found is left out when at is 0.
func (s *Server) entityBodies(r *http.Request, names []string, at int64) ([][]byte, error) {
	bodies := make([][]byte, len(names))
	var misses []string
	var gen uint64
	if at == 0 && s.cache != nil {
		gen = s.cache.generation()
		for i, n := range names {
			if a, ok := s.cache.get(n); ok {
				bodies[i] = a.body
			} else {
				misses = append(misses, n)
			}
		}
	} else {
		misses = names
	}
	if len(misses) > 0 {
		ents, err := s.store.GetMany(r.Context(), misses, at)
		if err != nil {
			return nil, err
		}
		if at != 0 && len(ents) != len(misses) {
			// Names found as of a change all exist as of that change.
			return nil, missingAt(misses, ents, at)
		}
		read := map[string][]byte{}
		for _, e := range ents {
			b, err := encodeJSON(e)
			if err != nil {
				return nil, err
			}
			read[e.Name] = b
			if at == 0 && s.cache != nil {
				s.cache.put(gen, &cachedAnswer{name: e.Name, id: e.ID, version: e.Version, body: b})
			}
		}
		for i, n := range names {
			if bodies[i] == nil {
				bodies[i] = read[n]
			}
		}
	}
	out := bodies[:0]
	for _, b := range bodies {
		if b != nil {
			out = append(out, b)
		}
	}
	return out, nil
}
