package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/clusto/clusto/entity"
)

// reqInfo is what the access log needs to know about a request, filled in
// as it is handled.
type reqInfo struct {
	id    string
	actor string
	role  entity.Role
	// route is the matched route's template, for metrics ("" if none).
	route string
}

type infoKey struct{}

// infoOf returns the request's info; requests that did not come through
// the middleware (a handler called directly) get a fresh one.
func infoOf(r *http.Request) *reqInfo {
	if i, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

func requestIDOf(r *http.Request) string { return infoOf(r).id }

func actorOf(r *http.Request) string { return infoOf(r).actor }

// A client may send its own X-Request-Id to correlate logs; it is kept when
// it is short and plain, else replaced.
var clientRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// recorder captures the status and size of a response for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware runs around every request, matched or not: it gives the
// request an id (X-Request-Id, also in every error body), caps the body,
// turns a panic into a logged 500, and writes the access log line.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{}
		if id := r.Header.Get("X-Request-Id"); clientRequestID.MatchString(id) {
			info.id = id
		} else {
			info.id = newRequestID()
		}
		w.Header().Set("X-Request-Id", info.id)
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic while handling a request", "request_id", info.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					s.writeError(rec, r, entity.Internal("handle request", fmt.Errorf("panic: %v", p)))
				}
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("request_id", info.id),
				slog.String("actor", info.actor),
				slog.Int64("bytes", rec.bytes),
				slog.String("remote", r.RemoteAddr),
			}
			if r.URL.RawQuery != "" {
				attrs = append(attrs, slog.String("query", r.URL.RawQuery))
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			s.metrics.observe(r.Method, info.route, rec.status, time.Since(start))
		}()
		if r.ContentLength > s.opts.MaxBodyBytes {
			s.writeError(rec, r, tooLarge(s.opts.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(rec, r.Body, s.opts.MaxBodyBytes)
		next.ServeHTTP(rec, r)
	})
}

func tooLarge(limit int64) error {
	return entity.Errorf(entity.KindTooLarge, "request body is larger than the limit of %d bytes", limit).With("limit", limit)
}
