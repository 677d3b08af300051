package server

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
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
		answers, err := s.entityAnswers(r, chunk, at)
		if err != nil {
			return err
		}
		// One allocation for the chunk's bytes, not a doubling per size:
		// a page of cabled devices is hundreds of kilobytes.
		size := 0
		for _, a := range answers {
			size += len(a.body)
		}
		buf.Grow(size + 64)
		for _, a := range answers {
			b := a.body
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

// entityAnswers is the encoded answers of the entities names as of
// change at (0: now), in order, each as GET /entities/{name} answers it
// (with its newline and its version for the ETag). Current ones come from
// the entity cache when it has them; the rest are read together
// (store.GetMany) and cached. An entity deleted since its name was found
// is left out when at is 0; as of a change every name must exist.
func (s *Server) entityAnswers(r *http.Request, names []string, at int64) ([]*cachedAnswer, error) {
	answers := make([]*cachedAnswer, len(names))
	var misses []string
	var gen uint64
	if at == 0 && s.cache != nil {
		gen = s.cache.generation()
		for i, n := range names {
			if a, ok := s.cache.get(n); ok {
				answers[i] = a
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
		if at != 0 {
			if err := store.NotFoundAmong(misses, ents, at); err != nil {
				return nil, err
			}
		}
		read := map[string]*cachedAnswer{}
		for _, e := range ents {
			b, err := encodeJSON(e)
			if err != nil {
				return nil, err
			}
			a := &cachedAnswer{name: e.Name, id: e.ID, version: e.Version, body: b}
			read[e.Name] = a
			if at == 0 && s.cache != nil {
				s.cache.put(gen, a)
			}
		}
		for i, n := range names {
			if answers[i] == nil {
				answers[i] = read[n]
			}
		}
	}
	out := answers[:0]
	for _, a := range answers {
		if a != nil {
			out = append(out, a)
		}
	}
	return out, nil
}
