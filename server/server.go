// Package server is clustod's JSON API over HTTP. It holds no SQL: it
// decodes and validates requests, calls the store, and maps the store's
// errors to statuses in one place (errors.go). Every endpoint is declared in
// one route table (routes.go) with the role it needs, so that authorization
// is applied by registration and cannot be forgotten by a handler.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/query"
	"github.com/clusto/clusto/server/ui"
)

// DefaultMaxBody is the request body cap when Options.MaxBodyBytes is 0.
const DefaultMaxBody = 4 << 20

// APIPrefix is where the API lives; /healthz is outside it.
const APIPrefix = "/api/v1"

// Options configure a Server.
type Options struct {
	// Log receives the access log and server errors; nil means slog.Default().
	Log *slog.Logger
	// MaxBodyBytes caps request bodies (413 beyond it); 0 means DefaultMaxBody.
	MaxBodyBytes int64
	// AllowAnonymous serves requests without a token, as actor "anonymous"
	// with every role, for as long as no token exists. clustod sets it only
	// when no token existed at start and it listens on loopback (or was
	// told --insecure). Once a token is created every request needs one.
	AllowAnonymous bool
	// DriversFile is the file of extra drivers the server was started with,
	// which POST /api/v1/drivers/reload reads again; empty for none.
	DriversFile string
	// Version is the server's build version, reported by /healthz.
	Version string
	// BackupDir is where POST /api/v1/admin/backup writes snapshots (and
	// the temporary files of downloads); empty means a "backups" directory
	// beside the database file. It is created, owner-only, on first use.
	// Check it with store.ResolveBackupDir first: the database's own directory
	// is refused there. (Even in it, only finished backups are listed or
	// deleted, never the live database's files.)
	BackupDir string
	// BackupKeep, when positive, is how many automatically named backups
	// (clusto-<UTC time>.db) the backup directory keeps: after each backup
	// written there the older ones go. Backups given a name are never
	// removed but by DELETE /api/v1/admin/backups/{name}. 0 keeps all.
	BackupKeep int
	// AllowedOrigins are web origins, besides the server's own, whose
	// pages may send it requests (see gate.go), in ParseOrigin's form: the
	// address of a reverse proxy in front of the server, under which the
	// browser sees the server's pages. No CORS headers are sent for them.
	AllowedOrigins []string

	// The bounds on heavy requests (queries, exports, plans, and dry
	// runs of batches, applies and allocations; see admit.go). Zero
	// means the default.

	// HeavyRunning is how many heavy requests run at once, server-wide;
	// 0 means DefaultHeavyRunning().
	HeavyRunning int
	// HeavyQueue is how many more may wait for a turn (503 beyond); 0
	// means DefaultHeavyQueue.
	HeavyQueue int
	// HeavyPerToken is how many one token may have running or waiting
	// (429 beyond); 0 means DefaultHeavyPerToken.
	HeavyPerToken int
	// HeavyWait is the longest a heavy request waits for a turn (then
	// 503); 0 means DefaultHeavyWait.
	HeavyWait time.Duration
	// QueryTimeout bounds a query (GET and POST /query) and an export,
	// from its turn to its answer (422 beyond); 0 means
	// DefaultQueryTimeout.
	QueryTimeout time.Duration
	// DryRunTimeout bounds a plan (POST /plan) and the dry run of a
	// batch, an apply or an allocation, retries after real writes
	// included (503 when writes kept it from finishing, else 422); 0
	// means DefaultDryRunTimeout.
	DryRunTimeout time.Duration
	// MaxAnswerBytes bounds the answer to a query page and to an export
	// (422 beyond); 0 means DefaultMaxAnswer.
	MaxAnswerBytes int64
	// EntityCache is how many encoded entities GET /entities/{name}
	// keeps (see entitycache.go); 0 means DefaultEntityCache, a negative
	// number none.
	EntityCache int
}

// withDefaults fills in the zero values of the bounds.
func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.HeavyRunning, DefaultHeavyRunning())
	def(&o.HeavyQueue, DefaultHeavyQueue)
	def(&o.HeavyPerToken, DefaultHeavyPerToken)
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&o.HeavyWait, DefaultHeavyWait}, {&o.QueryTimeout, DefaultQueryTimeout}, {&o.DryRunTimeout, DefaultDryRunTimeout}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if o.MaxAnswerBytes <= 0 {
		o.MaxAnswerBytes = DefaultMaxAnswer
	}
	if o.EntityCache == 0 {
		o.EntityCache = DefaultEntityCache
	}
	return o
}

// Server serves the inventory API. It is an http.Handler.
type Server struct {
	store   *store.Store
	opts    Options
	log     *slog.Logger
	router  *mux.Router
	routes  []route
	handler http.Handler
	metrics *metrics
	// backupRunning is the backup being made, nil when none is: at most
	// one runs at a time (see backup.go).
	backupRunning atomic.Pointer[runningBackup]
	// heavy admits heavy requests (admit.go).
	heavy *admission
	// cache holds encoded entities (nil: none).
	cache *entityCache
	// resume tells allocations by query where the last one of the same
	// query found its first match (query.ResumePoints).
	resume *query.ResumePoints
}

// New returns a server over store.
func New(st *store.Store, opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBody
	}
	opts = opts.withDefaults()
	if opts.BackupDir == "" {
		opts.BackupDir = filepath.Join(filepath.Dir(st.Path()), "backups")
	} else if abs, err := filepath.Abs(opts.BackupDir); err == nil {
		// Resolved now, so that the log names the real directory.
		opts.BackupDir = abs
	}
	var origins []string
	for _, o := range opts.AllowedOrigins {
		norm, err := ParseOrigin(o)
		if err != nil {
			opts.Log.Warn("allowed origin ignored", "err", err)
			continue
		}
		origins = append(origins, norm)
	}
	opts.AllowedOrigins = origins
	s := &Server{store: st, opts: opts, log: opts.Log}
	if opts.EntityCache > 0 {
		s.cache = newEntityCache(opts.EntityCache)
		st.OnCommit(s.cache.invalidate)
	}
	s.resume = query.NewResumePoints()
	st.OnCommit(func(changed []int64) {
		if changed == nil { // a drivers reload: forget everything read before
			s.resume.Forget()
		}
	})
	s.heavy = newAdmission(opts.HeavyRunning, opts.HeavyQueue, opts.HeavyPerToken, opts.HeavyWait, func(string) {})
	s.metrics = newMetrics(s)
	s.heavy.onResult = func(result string) { s.metrics.heavy.WithLabelValues(result).Inc() }
	if t := s.backupDir().Newest(); !t.IsZero() {
		s.metrics.backupLast.Set(float64(t.UnixNano()) / 1e9)
	}
	// Entity names may hold '/', sent escaped as %2F: match on the escaped
	// path so that such a name stays one path segment.
	s.router = mux.NewRouter().UseEncodedPath()
	s.router.NotFoundHandler = http.HandlerFunc(s.notFound)
	s.router.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	for _, rt := range s.routeTable() {
		s.register(rt)
	}
	s.mountUI()
	s.handler = s.middleware(s.gate(s.router))
	return s
}

// mountUI serves the web interface under /ui/, and / sends browsers there.
// It passes the gate like the API: the same origin checks, and on a
// server without tokens the same loopback-only rule.
func (s *Server) mountUI() {
	web, err := ui.New(s.store, ui.Options{AllowAnonymous: s.opts.AllowAnonymous, Explain: s.explain, Log: s.log, Version: s.opts.Version,
		Identify: func(r *http.Request, actor string, role entity.Role) { infoOf(r).actor, infoOf(r).role = actor, role }})
	if err != nil {
		// The templates are embedded: a build that cannot parse them is
		// broken, whatever a request holds.
		panic(fmt.Sprintf("web interface: %v", err))
	}
	s.router.PathPrefix(ui.Prefix).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoOf(r).route = ui.Prefix
		web.ServeHTTP(w, r)
	}))
	s.router.Path("/").Methods(http.MethodGet).HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoOf(r).route = "/"
		http.Redirect(w, r, ui.Prefix, http.StatusFound)
	})
}

// BackupDir is the directory POST /api/v1/admin/backup writes into, with
// the default applied.
func (s *Server) BackupDir() string { return s.opts.BackupDir }

// Limits is the server's options with every default applied, for the
// serving log line.
func (s *Server) Limits() Options { return s.opts }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// healthz is the liveness check: the database answers, and the newest
// change. It reads on a connection of its own (Store.Health), never the
// read pool, and takes no admission turn, so that heavy requests
// cannot make a busy server look dead.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	change, err := s.store.Health(ctx)
	if err != nil {
		s.log.Error("health check failed", "request_id", requestIDOf(r), "err", err)
		return s.writeJSON(w, r, http.StatusServiceUnavailable, entity.HealthUnavailable{Status: "unavailable", RequestID: requestIDOf(r)})
	}
	return s.writeJSON(w, r, http.StatusOK, entity.Health{Status: "ok", Change: change, Version: s.opts.Version})
}
