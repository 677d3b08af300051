package server

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/clusto/clusto/entity"
)

// writeResults answers {"results":[entity...],"total":N,"next_cursor":"..."}
// for a page of entity names, as the query endpoints do: the named
// entities in full, in the order given, as of change at (0: now). When at
// is 0 an entity deleted since the names were found is left out; pass the
// change the names were found at to read them exactly as they were.
//
// Each entity is encoded as soon as it is read, so that the page is held
// once, as JSON, and an answer that would pass Options.MaxAnswerBytes
// stops there (422) instead of growing without bound: a page of 1000
// entities with large attributes is many megabytes. The bytes are those
// json.Encoder makes of an entity.Results.
func (s *Server) writeResults(w http.ResponseWriter, r *http.Request, names []string, at int64, total int, nextCursor string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteString(`{"results":[`)
	first := true
	for _, n := range names {
		e, err := s.store.GetAt(r.Context(), n, at)
		if at == 0 && entity.IsKind(err, entity.KindNotFound) {
			continue
		}
		if err != nil {
			return err
		}
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
