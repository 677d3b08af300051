// Package server is clustod's JSON API over HTTP. It holds no SQL: it
// decodes requests, calls the store and the query compiler, and maps their
// errors to statuses in one place.
package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/clusto/clusto/entity"
)

// Server serves the inventory API.
type Server struct {
	store  *entity.Store
	log    *slog.Logger
	router *mux.Router
}

// New returns a server over store.
func New(store *entity.Store, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{store: store, log: log, router: mux.NewRouter()}
	s.router.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2e9)
	defer cancel()
	change, err := s.store.LatestChange(ctx)
	if err != nil {
		s.log.Error("health check", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "change": change})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
