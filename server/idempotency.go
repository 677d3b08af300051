package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// readBody reads the whole request body (already capped by the middleware)
// and puts it back for decode, so that a keyed request can be hashed.
func readBody(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return raw, nil
}

// decodeReplayable is decode that leaves the body to be read again, for
// a handler that looks at a request before keyedWrite hashes it.
func decodeReplayable(r *http.Request, v any) error {
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	err = decode(r, v)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return err
}

// checkWriteHeaders refuses what keyedWrite would, before the body is
// read: an If-Match, which names no entity here, and a bad
// Idempotency-Key.
func checkWriteHeaders(r *http.Request) error {
	if err := noIfMatch(r); err != nil {
		return err
	}
	_, err := idempotencyKey(r)
	return err
}

// idempotencyKey reads and checks the Idempotency-Key header ("" if none).
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 {
		return "", entity.Errorf(entity.KindInvalid, "Idempotency-Key is given %d times; give it once", len(vals))
	}
	k := vals[0]
	if k == "" || len(k) > maxIdempotencyKey {
		return "", entity.Errorf(entity.KindInvalid, "Idempotency-Key must be 1-%d characters", maxIdempotencyKey)
	}
	for _, c := range k {
		if c < 0x21 || c > 0x7e {
			return "", entity.Errorf(entity.KindInvalid, "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return k, nil
}

// keyedWrite runs fn as one write and answers its result. With an
// Idempotency-Key, the first successful answer is stored in the same
// transaction; a retry with the same key and the same request gets that
// answer again (header Idempotent-Replayed: true) and changes nothing, and
// the same key with a different request is a conflict. Failed requests are
// not remembered: they changed nothing, so a retry simply tries again.
func (s *Server) keyedWrite(w http.ResponseWriter, r *http.Request, fn func(tx *store.Tx) (int, any, error)) error {
	if err := noIfMatch(r); err != nil {
		return err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.RequestURI()+"\n"), raw...))
	hash := hex.EncodeToString(sum[:])
	actor := actorOf(r)
	var (
		replay *entity.Replay
		status int
		body   []byte
	)
	_, err = s.update(w, r, func(tx *store.Tx) error {
		if key != "" {
			rep, err := tx.IdempotencyLookup(actor, key)
			if err != nil {
				return err
			}
			if rep != nil {
				if rep.RequestHash != hash {
					return entity.Errorf(entity.KindConflict, "Idempotency-Key %q was used for a different request; use a new key for a new request", key)
				}
				replay = rep
				return nil
			}
		}
		st, v, err := fn(tx)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return entity.Internal("encode response", err)
		}
		status, body = st, buf.Bytes()
		if key != "" {
			return tx.IdempotencySave(actor, key, entity.Replay{RequestHash: hash, Status: status, Body: body})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if replay != nil {
		w.Header().Del("X-Clusto-Change")
		w.Header().Set("Idempotent-Replayed", "true")
		status, body = replay.Status, replay.Body
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	return nil
}
