package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
)

// ServeConfig is what clustod serve runs with, from its flags, the
// environment and the config file (in that order of precedence).
type ServeConfig struct {
	DB            string
	Listen        string
	DriversFile   string
	MaxBody       int64
	Seed          string
	BackupDir     string
	BackupKeep    int
	AllowOrigins  []string
	HeavyRunning  int
	HeavyQueue    int
	HeavyPerToken int
	HeavyWait     time.Duration
	QueryTimeout  time.Duration
	DryRunTimeout time.Duration
	MaxAnswer     int64
	EntityCache   int
	Insecure      bool
}

// Main is clustod serve as a value, so that the whole serve path runs in a
// test as it runs in the binary: ParseFlags reads the configuration, Run
// opens the database and starts serving, Close stops. (WTF Dial's
// cmd/wtfd is the model.)
type Main struct {
	Config ServeConfig
	// Log receives the server's structured log.
	Log *slog.Logger

	// resolved is the listen address, checked by ParseFlags.
	resolved *net.TCPAddr
	// backups is the backup directory, resolved by ParseFlags.
	backups string

	store  *store.Store
	unlock func()
	ln     net.Listener
	srv    *http.Server
	api    *server.Server
	errc   chan error

	closeOnce sync.Once
	closeErr  error
}

// NewMain returns a Main that logs to logTo.
func NewMain(logTo io.Writer) *Main {
	return &Main{Log: slog.New(slog.NewJSONHandler(logTo, nil))}
}

// errUsage is a mistake on the command line that the flag set has already
// reported (with the usage).
var errUsage = errors.New("usage")

// ParseFlags reads the configuration from args, the environment and the
// config file, and checks it: nothing is opened or created. pflag.ErrHelp
// means --help was asked for (and answered on stderr).
func (m *Main) ParseFlags(args []string, stderr io.Writer) error {
	fs := pflag.NewFlagSet("clustod serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &m.Config
	dbFlagVar(fs, &c.DB)
	fs.StringVar(&c.Listen, "listen", envOr("CLUSTO_LISTEN", "127.0.0.1:8642"), "address to listen on; port 0 picks a free one, logged in the \"serving\" line (env CLUSTO_LISTEN)")
	fs.StringVar(&c.DriversFile, "drivers", envOr("CLUSTO_DRIVERS", ""), "JSON file of extra drivers (env CLUSTO_DRIVERS)")
	defBody, err := envInt("CLUSTO_MAX_BODY", server.DefaultMaxBody, 1, "a positive number of bytes")
	if err != nil {
		return err
	}
	fs.Int64Var(&c.MaxBody, "max-body", defBody, "largest request body accepted, in bytes (env CLUSTO_MAX_BODY)")
	fs.StringVar(&c.Seed, "seed", envOr("CLUSTO_SEED", ""), "inventory file to load when the database is new (env CLUSTO_SEED)")
	fs.StringVar(&c.BackupDir, "backup-dir", envOr("CLUSTO_BACKUP_DIR", ""), "directory POST /api/v1/admin/backup writes backups into, created owner-only on first use (default: backups beside the --db file) (env CLUSTO_BACKUP_DIR)")
	defKeep, err := envInt("CLUSTO_BACKUP_KEEP", 0, 0, "a whole number (0 keeps every backup)")
	if err != nil {
		return err
	}
	fs.IntVar(&c.BackupKeep, "backup-keep", int(defKeep), "how many automatically named backups (clusto-<UTC time>.db) the backup directory keeps; older ones are removed after each new one, named ones never (0: keep all) (env CLUSTO_BACKUP_KEEP)")
	allowOrigin := fs.String("allow-origin", envOr("CLUSTO_ALLOW_ORIGIN", ""), "comma-separated web origins besides the server's own whose pages may call the API, such as https://clusto.example.net for a reverse proxy in front of it (env CLUSTO_ALLOW_ORIGIN)")
	// The bounds on heavy requests (server/admit.go; docs/operations.md).
	var heavyInts [3]int64
	for i, v := range []struct {
		key string
		def int64
	}{{"CLUSTO_HEAVY_RUNNING", int64(server.DefaultHeavyRunning())}, {"CLUSTO_HEAVY_QUEUE", server.DefaultHeavyQueue}, {"CLUSTO_HEAVY_PER_TOKEN", server.DefaultHeavyPerToken}} {
		if heavyInts[i], err = envInt(v.key, v.def, 1, "a positive whole number"); err != nil {
			return err
		}
	}
	fs.IntVar(&c.HeavyRunning, "heavy-running", int(heavyInts[0]), "heavy requests (queries, exports, plans, dry runs) run at once, server-wide; one per core but one (at least one) unless set (env CLUSTO_HEAVY_RUNNING)")
	fs.IntVar(&c.HeavyQueue, "heavy-queue", int(heavyInts[1]), "heavy requests that may wait for a turn beyond those running; more are refused with 503 (env CLUSTO_HEAVY_QUEUE)")
	fs.IntVar(&c.HeavyPerToken, "heavy-per-token", int(heavyInts[2]), "heavy requests one token may have running or waiting; more are refused with 429 (env CLUSTO_HEAVY_PER_TOKEN)")
	var heavyDurations [3]time.Duration
	for i, v := range []struct {
		key string
		def time.Duration
	}{{"CLUSTO_HEAVY_WAIT", server.DefaultHeavyWait}, {"CLUSTO_QUERY_TIMEOUT", server.DefaultQueryTimeout}, {"CLUSTO_DRY_RUN_TIMEOUT", server.DefaultDryRunTimeout}} {
		if heavyDurations[i], err = envDuration(v.key, v.def); err != nil {
			return err
		}
	}
	fs.DurationVar(&c.HeavyWait, "heavy-wait", heavyDurations[0], "longest a heavy request waits for a turn before a 503 (env CLUSTO_HEAVY_WAIT)")
	fs.DurationVar(&c.QueryTimeout, "query-timeout", heavyDurations[1], "longest a query or an export may run once admitted; beyond, 422 too_expensive (env CLUSTO_QUERY_TIMEOUT)")
	fs.DurationVar(&c.DryRunTimeout, "dry-run-timeout", heavyDurations[2], "longest a plan or a dry run may take, retries after the writes that preempt it included; beyond, 503 if writes held it up, else 422 (env CLUSTO_DRY_RUN_TIMEOUT)")
	defAnswer, err := envInt("CLUSTO_MAX_ANSWER", server.DefaultMaxAnswer, 1, "a positive number of bytes")
	if err != nil {
		return err
	}
	defCache, err := envInt("CLUSTO_ENTITY_CACHE", server.DefaultEntityCache, 0, "a whole number (0: no cache)")
	if err != nil {
		return err
	}
	fs.IntVar(&c.EntityCache, "entity-cache", int(defCache), "how many encoded entities GET /entities/{name} keeps in memory, dropped as writes change them; 0 keeps none (env CLUSTO_ENTITY_CACHE)")
	fs.Int64Var(&c.MaxAnswer, "max-answer", defAnswer, "largest answer to a query page or an export, in bytes; beyond, 422 too_expensive (env CLUSTO_MAX_ANSWER)")
	fs.BoolVar(&c.Insecure, "insecure", envOr("CLUSTO_INSECURE", "") == "true", "serve without authentication on a non-loopback address while no token exists (never do this on a shared network) (env CLUSTO_INSECURE=true)")
	fs.String("config", "", "file of name = value settings, one per line, for any of these flags (env CLUSTO_CONFIG); the command line overrides the environment, which overrides the file")
	if cfg := configPath(args); cfg != "" {
		if err := applyConfigFile(fs, cfg); err != nil {
			return err
		}
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if c.BackupKeep < 0 {
		return fmt.Errorf("--backup-keep %d must be 0 (keep every backup) or more", c.BackupKeep)
	}
	if c.MaxBody <= 0 {
		return fmt.Errorf("--max-body must be a positive number of bytes")
	}
	if c.AllowOrigins, err = parseOrigins(*allowOrigin); err != nil {
		return fmt.Errorf("--allow-origin: %w", err)
	}
	for _, check := range []struct {
		name string
		ok   bool
		want string
	}{
		{"heavy-running", c.HeavyRunning > 0, "a positive whole number"},
		{"heavy-queue", c.HeavyQueue > 0, "a positive whole number"},
		{"heavy-per-token", c.HeavyPerToken > 0, "a positive whole number"},
		{"heavy-wait", c.HeavyWait > 0, "a positive duration"},
		{"query-timeout", c.QueryTimeout > 0, "a positive duration"},
		{"dry-run-timeout", c.DryRunTimeout > 0, "a positive duration"},
		{"max-answer", c.MaxAnswer > 0, "a positive number of bytes"},
		{"entity-cache", c.EntityCache >= 0, "a whole number (0: no cache)"},
	} {
		if !check.ok {
			return fmt.Errorf("--%s must be %s", check.name, check.want)
		}
	}
	// Checked before the lock file or the database is made: a backup
	// directory that is the database's own must stop clustod with nothing
	// touched.
	if m.backups, err = store.ResolveBackupDir(c.DB, c.BackupDir); err != nil {
		return fmt.Errorf("--backup-dir: %w", err)
	}
	// The listen address is checked before anything is made; it is bound
	// only once the database is ready to serve.
	if m.resolved, err = net.ResolveTCPAddr("tcp", c.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	return nil
}

// Run opens (creating and migrating) the database, loads the seed into a
// new one, binds the listen address and starts serving in the background;
// it returns once the server is serving (see Addr, Err) or has refused to
// start. A refused start leaves nothing behind: a database and lock file it
// created are removed, and no port stays bound.
func (m *Main) Run(ctx context.Context) (err error) {
	c := m.Config
	reg := drivers.Builtin()
	if c.DriversFile != "" {
		if err := reg.LoadFile(c.DriversFile); err != nil {
			return err
		}
	}
	_, statErr := os.Stat(c.DB)
	_, lockErr := os.Stat(c.DB + ".lock")
	unlock, err := lockDatabase(c.DB)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, c.DB, store.Options{Drivers: reg, File: store.FileOptions{MapBytes: serveMapBytes}})
	if err != nil {
		unlock()
		return err
	}
	// A start that cannot serve removes what it created (a new database
	// and its lock file), so that a refused configuration leaves nothing.
	defer func() {
		if err == nil {
			return
		}
		st.Close()
		if errors.Is(statErr, os.ErrNotExist) {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(c.DB + suffix)
			}
		}
		unlock()
		if errors.Is(lockErr, os.ErrNotExist) {
			os.Remove(c.DB + ".lock")
		}
	}()
	if errors.Is(statErr, os.ErrNotExist) {
		// Said out loud: a mistyped --db in a unit file otherwise serves an
		// empty inventory without a word.
		m.Log.Warn("created a new, empty database: no file was at --db", "db", c.DB)
	}
	if c.Seed != "" {
		latest, err := st.LatestChange(ctx)
		if err != nil {
			return err
		}
		if latest == 0 {
			plan, err := applyFile(ctx, st, c.Seed, false, false)
			if err != nil {
				return fmt.Errorf("loading %s into the new database: %w", c.Seed, err)
			}
			m.Log.Info("loaded seed inventory into the new database", "file", c.Seed, "created", plan.Create)
		}
	}
	hasTokens, err := st.HasTokens(ctx)
	if err != nil {
		return err
	}
	refusal := func(addr any) error {
		return fmt.Errorf("refusing to listen on %v without authentication: no API token exists.\n"+
			"Create one first (clustod token create NAME --role admin --db %s), listen on a loopback address, or pass --insecure", addr, c.DB)
	}
	if !hasTokens && !m.resolved.IP.IsLoopback() && !c.Insecure {
		return refusal(c.Listen)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().(*net.TCPAddr)
	anonymous := false
	if !hasTokens {
		switch {
		case addr.IP.IsLoopback():
			anonymous = true
			m.Log.Warn("no API token exists: serving WITHOUT authentication, on loopback only, until one is created (clustod token create NAME --role admin)", "addr", addr.String())
		case c.Insecure:
			anonymous = true
			m.Log.Warn("no API token exists and --insecure is set: serving WITHOUT authentication on a non-loopback address", "addr", addr.String())
		default:
			// The name resolved to a loopback address above but was bound
			// elsewhere: refused all the same.
			ln.Close()
			return refusal(addr)
		}
	}
	entityCache := c.EntityCache
	if entityCache == 0 {
		entityCache = -1 // none
	}
	api := server.New(st, server.Options{EntityCache: entityCache, Log: m.Log, MaxBodyBytes: c.MaxBody, AllowAnonymous: anonymous, DriversFile: c.DriversFile, Version: version, BackupDir: m.backups, BackupKeep: c.BackupKeep,
		HeavyRunning: c.HeavyRunning, HeavyQueue: c.HeavyQueue, HeavyPerToken: c.HeavyPerToken, HeavyWait: c.HeavyWait,
		QueryTimeout: c.QueryTimeout, DryRunTimeout: c.DryRunTimeout, MaxAnswerBytes: c.MaxAnswer, AllowedOrigins: c.AllowOrigins})
	m.srv = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    server.MaxHeaderBytes,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	m.store, m.unlock, m.ln, m.api = st, unlock, ln, api
	m.Log.Info("serving", "addr", addr.String(), "db", c.DB, "authentication", !anonymous, "max_body", c.MaxBody, "backup_dir", api.BackupDir(), "backup_keep", c.BackupKeep,
		"heavy_running", c.HeavyRunning, "heavy_queue", c.HeavyQueue, "heavy_per_token", c.HeavyPerToken, "heavy_wait", c.HeavyWait.String(),
		"query_timeout", c.QueryTimeout.String(), "dry_run_timeout", c.DryRunTimeout.String(), "max_answer", c.MaxAnswer, "entity_cache", c.EntityCache)
	m.errc = make(chan error, 1)
	// The listener turns net/http's own plain-text refusals into JSON.
	go func() { m.errc <- m.srv.Serve(api.Listener(ln)) }()
	return nil
}

// Addr is the address the server listens on, once Run has returned nil.
func (m *Main) Addr() net.Addr { return m.ln.Addr() }

// Err delivers the error that stopped the server on its own (Serve
// failing), once Run has returned nil.
func (m *Main) Err() <-chan error { return m.errc }

// Close stops serving: requests in flight are finished (for up to 30 s)
// before the database is closed and its lock released. It is safe to call
// more than once, and after a Run that failed.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		if m.srv == nil {
			return
		}
		m.Log.Info("shutting down: finishing requests in flight")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutErr := m.srv.Shutdown(ctx)
		m.closeErr = errors.Join(shutErr, m.store.Close())
		m.unlock()
		m.Log.Info("stopped")
	})
	return m.closeErr
}

// serve is clustod serve: Main until SIGTERM or an interrupt.
func serve(args []string, stderr io.Writer) int {
	m := NewMain(stderr)
	if err := m.ParseFlags(args, stderr); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "clustod serve: %v\n", err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return 1
	}
	code := 0
	select {
	case err := <-m.Err():
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		code = 1
	case <-ctx.Done():
	}
	if err := m.Close(); err != nil {
		m.Log.Error("shutdown", "err", err)
	}
	return code
}

// serveMapBytes is how much of the file the server's readers map
// (store.FileOptions.MapBytes): the whole of any inventory this machine
// serves.
const serveMapBytes = 4 << 30
