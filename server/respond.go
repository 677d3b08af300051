package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// writeJSON answers v as JSON with the given status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) error {
	body, err := encodeJSON(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
	return nil
}

// encodeJSON is the bytes of an answer: v, not HTML-escaped (locate's
// text lines read "a -> b", not "a -\u003e b"), and a newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, entity.Internal("encode response", err)
	}
	return buf.Bytes(), nil
}

// writeBody is writeJSON for error bodies, which cannot fail to encode.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, status int, v any) {
	if err := s.writeJSON(w, r, status, v); err != nil {
		s.log.Error("encode error response", "request_id", requestIDOf(r), "err", err)
		w.WriteHeader(http.StatusInternalServerError)
	}
}

// entityTag is the ETag of an answer showing an entity: its version, a
// dash and a digest of the answer's bytes ("6-1f2e3d4c5b6a7988"). The
// version is what If-Match compares (a write's precondition is about the
// entity); the digest is what makes the tag change whenever the bytes do,
// even when the version does not: a neighbour renamed (the lists show its
// name), an entity deleted and made again under the same name, a drivers
// reload. That is what lets If-None-Match answer 304 without ever
// keeping a client on a stale body.
func entityTag(version int64, body []byte) string {
	h := fnv.New64a()
	h.Write(body)
	return fmt.Sprintf(`"%d-%016x"`, version, h.Sum64())
}

// writeEntity answers an entity with its version and digest as the ETag.
func (s *Server) writeEntity(w http.ResponseWriter, r *http.Request, status int, e *entity.Entity) error {
	body, err := encodeJSON(e)
	if err != nil {
		return err
	}
	return s.writeTagged(w, r, status, entityTag(e.Version, body), body)
}

// writeTagged answers body, already encoded, with the ETag tag; a GET or
// HEAD whose If-None-Match holds tag is answered 304 without the body.
func (s *Server) writeTagged(w http.ResponseWriter, r *http.Request, status int, tag string, body []byte) error {
	h := w.Header()
	h.Set("ETag", tag)
	if status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) && noneMatch(r, tag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
	return nil
}

// noneMatch reports whether the request's If-None-Match names tag (or is
// "*"), compared weakly as RFC 9110 says for If-None-Match: a W/ prefix is
// ignored.
func noneMatch(r *http.Request, tag string) bool {
	for _, v := range r.Header.Values("If-None-Match") {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == tag {
				return true
			}
		}
	}
	return false
}

// entityURL is where an entity lives in the API.
func entityURL(name string) string { return APIPrefix + "/entities/" + url.PathEscape(name) }

// decode reads the request body as one JSON value into v, refusing unknown
// fields, trailing data and bodies over the cap.
func decode(r *http.Request, v any) error {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, storing
	// a name nobody sent.
	if !utf8.Valid(raw) {
		for i := 0; i < len(raw); {
			c, size := utf8.DecodeRune(raw[i:])
			if c == utf8.RuneError && size <= 1 {
				return entity.Errorf(entity.KindInvalid, "request body is not valid UTF-8 (at byte %d)", i)
			}
			i += size
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		if err == nil {
			return entity.Errorf(entity.KindInvalid, "request body holds more than one JSON value")
		}
		return bodyError(err)
	}
	// The same for an escaped UTF-16 surrogate without its other half
	// ("\ud800"): valid JSON, decoded as U+FFFD. Looked for once the body
	// is known to be valid JSON, so that the scan reads it right.
	if at, esc, ok := loneSurrogate(raw); ok {
		return entity.Errorf(entity.KindInvalid, "request body holds %s at byte %d: half of a UTF-16 surrogate pair without the other half, which is no character (JSON strings must be valid Unicode)", esc, at)
	}
	return nil
}

// loneSurrogate finds, in valid JSON, the first \u escape of a UTF-16
// surrogate (D800-DFFF) that is not a high one followed at once by an
// escaped low one: its byte offset and its text.
func loneSurrogate(raw []byte) (at int, esc string, ok bool) {
	if !bytes.Contains(raw, []byte(`\u`)) {
		return 0, "", false
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			r, isU := escapedUnit(raw, i)
			if !isU {
				i++ // \n, \", \\ and the like: skip the escaped byte
				continue
			}
			if !utf16.IsSurrogate(r) {
				i += 5
				continue
			}
			if r < 0xdc00 {
				if r2, ok := escapedUnit(raw, i+6); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
					i += 11
					continue
				}
			}
			return i, string(raw[i : i+6]), true
		}
	}
	return 0, "", false
}

// escapedUnit reads the UTF-16 code unit of a \uXXXX escape at raw[i].
func escapedUnit(raw []byte, i int) (rune, bool) {
	if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// decodeOptional is decode for a body that may be left out: an empty (or
// blank) body leaves v as it is.
func decodeOptional(r *http.Request, v any) error {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return decode(r, v)
}

// bodyError explains a JSON decoding failure in terms of the request.
func bodyError(err error) error {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return tooLarge(maxErr.Limit)
	case errors.Is(err, io.EOF):
		return entity.Errorf(entity.KindInvalid, "request body is empty; expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return entity.Errorf(entity.KindInvalid, "request body ends in the middle of a JSON value")
	case errors.As(err, &syntaxErr):
		return entity.Errorf(entity.KindInvalid, "request body is not valid JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return entity.Errorf(entity.KindInvalid, "request body must be %s, not a JSON %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return entity.Errorf(entity.KindInvalid, "field %q must be %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return entity.Errorf(entity.KindInvalid, "unknown field %s in the request body", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	var e *entity.Error
	if errors.As(err, &e) {
		return err
	}
	return entity.Errorf(entity.KindInvalid, "request body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names what JSON a Go kind decodes from.
func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "a JSON object"
	case "slice", "array":
		return "a JSON array"
	case "string":
		return "a JSON string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number"
	case "float32", "float64":
		return "a number"
	}
	return "a different JSON value"
}

// pathName reads an entity name from the path and validates it.
func pathName(r *http.Request, v string) (string, error) {
	raw := mux.Vars(r)[v]
	name, err := url.PathUnescape(raw)
	if err != nil {
		return "", entity.Errorf(entity.KindInvalid, "%s in the path is not correctly %%-escaped", v)
	}
	if err := entity.ValidateName(name); err != nil {
		return "", entity.Errorf(entity.KindInvalid, "%s in the path: %s", v, err.Error())
	}
	return name, nil
}

// pathVar reads a path variable that is not an entity name.
func pathVar(r *http.Request, v string) (string, error) {
	s, err := url.PathUnescape(mux.Vars(r)[v])
	if err != nil {
		return "", entity.Errorf(entity.KindInvalid, "%s in the path is not correctly %%-escaped", v)
	}
	return s, nil
}

// queryValue returns the one value of a query parameter ("" when absent).
func queryValue(r *http.Request, name string) (string, bool, error) {
	vs, ok := r.URL.Query()[name]
	if !ok {
		return "", false, nil
	}
	if len(vs) > 1 {
		return "", true, entity.Errorf(entity.KindInvalid, "query parameter %q is given %d times; give it once", name, len(vs))
	}
	return vs[0], true, nil
}

// intParam reads an integer query parameter in [lo, hi], def when absent.
func intParam(r *http.Request, name string, lo, hi, def int64) (int64, error) {
	v, ok, err := queryValue(r, name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, entity.Errorf(entity.KindInvalid, "query parameter %s=%q must be an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// boolParam reads a boolean query parameter (true, false, 1, 0), false when absent.
func boolParam(r *http.Request, name string) (bool, error) {
	v, ok, err := queryValue(r, name)
	if err != nil || !ok {
		return false, err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, entity.Errorf(entity.KindInvalid, "query parameter %s=%q must be true or false", name, v)
	}
	return b, nil
}

// atParam reads ?at=N, the change to read as of: 0 (now) when absent. A
// change that has not happened yet is refused, so that a read as of N
// always answers the same.
func (s *Server) atParam(r *http.Request) (int64, error) {
	v, ok, err := queryValue(r, "at")
	if err != nil || !ok {
		return 0, err
	}
	at, err := strconv.ParseInt(v, 10, 64)
	if err != nil || at < 1 {
		return 0, entity.Errorf(entity.KindInvalid, "query parameter at=%q must be a change number (1 or more)", v)
	}
	if err := s.store.CheckAt(r.Context(), at); err != nil {
		return 0, err
	}
	return at, nil
}

// ifMatch reads the If-Match header: the entity version a write expects.
// ok is false when there is none (or it is "*", which any existing entity
// matches).
func ifMatch(r *http.Request) (version int64, ok bool, err error) {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return 0, false, nil
	}
	h := strings.TrimSpace(strings.Join(vals, ","))
	if h == "*" {
		return 0, false, nil
	}
	if strings.Contains(h, ",") {
		return 0, false, entity.Errorf(entity.KindInvalid, "If-Match must hold one ETag (the one the entity's answers send, or its version alone such as \"3\"), not a list")
	}
	if strings.HasPrefix(h, "W/") {
		return 0, false, entity.Errorf(entity.KindInvalid, "If-Match needs the strong ETag this API sends (such as \"3-1f2e3d4c5b6a7988\"), not a weak one")
	}
	v, ok := tagVersion(h)
	if !ok {
		return 0, false, entity.Errorf(entity.KindInvalid, "If-Match %s is not an ETag of this API (an ETag such as \"3-1f2e3d4c5b6a7988\", or the entity version alone, \"3\")", h)
	}
	return v, true, nil
}

// tagVersion is the entity version an If-Match tag names: an ETag this
// API sent ("3-1f2e3d4c5b6a7988") or the version alone ("3").
func tagVersion(tag string) (int64, bool) {
	t := strings.Trim(tag, `"`)
	num, digest, hasDigest := strings.Cut(t, "-")
	if hasDigest && (len(digest) != 16 || strings.Trim(digest, "0123456789abcdef") != "") {
		return 0, false
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 1 || strconv.FormatInt(v, 10) != num {
		return 0, false
	}
	return v, true
}

// noIfMatch refuses If-Match on writes that have no single entity to
// check it against, rather than ignore a precondition.
func noIfMatch(r *http.Request) error {
	if len(r.Header.Values("If-Match")) > 0 {
		return entity.Errorf(entity.KindInvalid, "If-Match is not supported on %s %s: it names no single entity (give If-Match on the entity's own endpoints)", r.Method, r.URL.Path)
	}
	return nil
}

// checkIfMatch, inside a write, fails with precondition_failed when the
// request's If-Match names a version other than the entity's current one.
func checkIfMatch(tx *store.Tx, r *http.Request, name string) error {
	v, ok, err := ifMatch(r)
	if err != nil || !ok {
		return err
	}
	return tx.CheckVersion(name, v)
}

// update runs fn as one write by the request's actor and returns the
// number of the change it recorded; it is also sent as X-Clusto-Change.
func (s *Server) update(w http.ResponseWriter, r *http.Request, fn func(tx *store.Tx) error) (int64, error) {
	if _, _, err := ifMatch(r); err != nil {
		return 0, err
	}
	var change int64
	err := s.store.Update(r.Context(), actorOf(r), func(tx *store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		change, err = tx.LastChange()
		return err
	})
	if err != nil {
		return 0, err
	}
	w.Header().Set("X-Clusto-Change", strconv.FormatInt(change, 10))
	return change, nil
}
