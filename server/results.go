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
func (s *Server) writeResults(w http.ResponseWriter, r *http.Request, names []string, at int64, total int, nextCursor string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteString(`{"results":[`)
	first := true
	for start := 0; start < len(names); start += hydrateChunk {
		chunk := names[start:min(start+hydrateChunk, len(names))]
		ents, err := s.store.GetMany(r.Context(), chunk, at)
		if err != nil {
			return err
		}
		if at != 0 && len(ents) != len(chunk) {
			// Names found as of a change all exist as of that change.
			return missingAt(chunk, ents, at)
		}
		for _, e := range ents {
			if !first {
				buf.WriteByte(',')
			}
			first = false
			if err := enc.Encode(e); err != nil {
				return entity.Internal("encode response", err)
			}
			buf.Truncate(buf.Len() - 1) // the encoder's newline
			if int64(buf.Len()) > s.opts.MaxAnswerBytes {
				return s.answerTooLarge("this query", "ask for a smaller page (limit) or fewer entities")
			}
		}
	}
	var tail bytes.Buffer
	tailEnc := json.NewEncoder(&tail)
	tailEnc.SetEscapeHTML(false)
	if err := tailEnc.Encode(struct {
		Total      int    `json:"total"`
		NextCursor string `json:"next_cursor"`
	}{total, nextCursor}); err != nil {
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
