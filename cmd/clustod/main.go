// Command clustod is the clusto inventory server.
//
//	clustod serve [--db PATH] [--listen ADDR] [--drivers FILE] [--max-body BYTES] [--backup-dir DIR] [--backup-keep N] [--insecure]
//	              [--heavy-running N] [--heavy-queue N] [--heavy-per-token N] [--heavy-wait D]
//	              [--query-timeout D] [--dry-run-timeout D] [--max-answer BYTES]
//	clustod token create NAME --role read|write|admin [--db PATH]
//	clustod token list [--db PATH]
//	clustod token revoke NAME [--db PATH]
//
// Flags fall back to the environment: CLUSTO_DB, CLUSTO_LISTEN,
// CLUSTO_DRIVERS, CLUSTO_MAX_BODY, CLUSTO_BACKUP_DIR, CLUSTO_BACKUP_KEEP,
// CLUSTO_HEAVY_RUNNING, CLUSTO_HEAVY_QUEUE, CLUSTO_HEAVY_PER_TOKEN,
// CLUSTO_HEAVY_WAIT, CLUSTO_QUERY_TIMEOUT, CLUSTO_DRY_RUN_TIMEOUT,
// CLUSTO_MAX_ANSWER.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
)

const usage = `clustod - the clusto inventory server

Usage:
  clustod serve [flags]                       open (creating and migrating) the database and serve the API
  clustod token create NAME --role ROLE       make an API token (read, write or admin) and print it once
  clustod token list                          list tokens (names and roles; never the tokens)
  clustod token revoke NAME                   revoke a token at once
  clustod import FILE [--prune] [--dry-run]   apply an inventory file (docs/inventory-files.md) as one batch
  clustod export [--out FILE]                 write the inventory as an inventory file
  clustod generate --datacenters N --racks N --servers-per-rack N
                                              build a large realistic inventory (for tests and benchmarks)
  clustod check [--json] [--backup FILE]      integrity check and inventory invariants; exit 1 on any problem
                                              (--backup: check a backup file without writing to it)
  clustod backup PATH                         consistent snapshot of the live database
  clustod restore BACKUP                      replace the database with a checked copy of a backup (refused while served)
  clustod version                             print the version

Every command takes --db PATH (env CLUSTO_DB, default clusto.db). serve,
import and generate create a missing database; check, export and backup
refuse one, so that a mistyped path is an error, not a new empty inventory.
Run 'clustod serve --help' for the server's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "import":
		return importCmd(args[1:], stdout, stderr)
	case "export":
		return exportCmd(args[1:], stdout, stderr)
	case "generate":
		return generateCmd(args[1:], stdout, stderr)
	case "check":
		return checkCmd(args[1:], stdout, stderr)
	case "backup":
		return backupCmd(args[1:], stdout, stderr)
	case "restore":
		return restoreCmd(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "clustod", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "clustod: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// envInt is the default of a numeric flag taken from its environment
// variable key (def when unset). A value that is not a whole number of at
// least min is reported on stderr and ok is false.
func envInt(stderr io.Writer, key string, def, min int64, want string) (n int64, ok bool) {
	v := envOr(key, "")
	if v == "" {
		return def, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		fmt.Fprintf(stderr, "clustod serve: %s=%q must be %s\n", key, v, want)
		return 0, false
	}
	return n, true
}

// parseOrigins reads --allow-origin: origins separated by commas (and
// spaces), each checked, in the form browsers send.
func parseOrigins(list string) ([]string, error) {
	var out []string
	for _, o := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		norm, err := server.ParseOrigin(o)
		if err != nil {
			return nil, err
		}
		out = append(out, norm)
	}
	return out, nil
}

// envDuration is envInt for a duration flag (Go syntax: 10s, 2m): a
// value that is not a positive duration is reported and ok is false.
func envDuration(stderr io.Writer, key string, def time.Duration) (d time.Duration, ok bool) {
	v := envOr(key, "")
	if v == "" {
		return def, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		fmt.Fprintf(stderr, "clustod serve: %s=%q must be a positive duration such as 10s or 2m\n", key, v)
		return 0, false
	}
	return d, true
}

func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", envOr("CLUSTO_DB", "clusto.db"), "SQLite database file; serve, import, generate and the token commands create it if absent, check, export and backup refuse a missing one (env CLUSTO_DB)")
}

// parseInterspersed parses flags that may come before or after positional
// arguments (clustod token create NAME --role read) and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("clustod serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	listen := fs.String("listen", envOr("CLUSTO_LISTEN", "127.0.0.1:8642"), "address to listen on (env CLUSTO_LISTEN)")
	driversFile := fs.String("drivers", envOr("CLUSTO_DRIVERS", ""), "JSON file of extra drivers (env CLUSTO_DRIVERS)")
	defBody, ok := envInt(stderr, "CLUSTO_MAX_BODY", server.DefaultMaxBody, 1, "a positive number of bytes")
	if !ok {
		return 2
	}
	maxBody := fs.Int64("max-body", defBody, "largest request body accepted, in bytes (env CLUSTO_MAX_BODY)")
	seed := fs.String("seed", envOr("CLUSTO_SEED", ""), "inventory file to load when the database is new (env CLUSTO_SEED)")
	backupDir := fs.String("backup-dir", envOr("CLUSTO_BACKUP_DIR", ""), "directory POST /api/v1/admin/backup writes snapshots into, created owner-only on first use (default: backups beside the --db file) (env CLUSTO_BACKUP_DIR)")
	defKeep, ok := envInt(stderr, "CLUSTO_BACKUP_KEEP", 0, 0, "a whole number (0 keeps every backup)")
	if !ok {
		return 2
	}
	backupKeep := fs.Int("backup-keep", int(defKeep), "how many automatically named backups (clusto-<UTC time>.db) the backup directory keeps; older ones are removed after each new one, named ones never (0: keep all) (env CLUSTO_BACKUP_KEEP)")
	allowOrigin := fs.String("allow-origin", envOr("CLUSTO_ALLOW_ORIGIN", ""), "comma-separated web origins besides the server's own whose pages may call the API, such as https://clusto.example.net for a reverse proxy in front of it (env CLUSTO_ALLOW_ORIGIN)")
	// The bounds on heavy requests (server/admit.go; docs/operations.md).
	var heavyInts [3]int64
	for i, v := range []struct {
		key string
		def int64
	}{{"CLUSTO_HEAVY_RUNNING", int64(server.DefaultHeavyRunning())}, {"CLUSTO_HEAVY_QUEUE", server.DefaultHeavyQueue}, {"CLUSTO_HEAVY_PER_TOKEN", server.DefaultHeavyPerToken}} {
		if heavyInts[i], ok = envInt(stderr, v.key, v.def, 1, "a positive whole number"); !ok {
			return 2
		}
	}
	heavyRunning := fs.Int("heavy-running", int(heavyInts[0]), "heavy requests (queries, exports, plans, dry runs) run at once, server-wide; one per core but one (at least one) unless set (env CLUSTO_HEAVY_RUNNING)")
	heavyQueue := fs.Int("heavy-queue", int(heavyInts[1]), "heavy requests that may wait for a turn beyond those running; more are refused with 503 (env CLUSTO_HEAVY_QUEUE)")
	heavyPerToken := fs.Int("heavy-per-token", int(heavyInts[2]), "heavy requests one token may have running or waiting; more are refused with 429 (env CLUSTO_HEAVY_PER_TOKEN)")
	var heavyDurations [3]time.Duration
	for i, v := range []struct {
		key string
		def time.Duration
	}{{"CLUSTO_HEAVY_WAIT", server.DefaultHeavyWait}, {"CLUSTO_QUERY_TIMEOUT", server.DefaultQueryTimeout}, {"CLUSTO_DRY_RUN_TIMEOUT", server.DefaultDryRunTimeout}} {
		if heavyDurations[i], ok = envDuration(stderr, v.key, v.def); !ok {
			return 2
		}
	}
	heavyWait := fs.Duration("heavy-wait", heavyDurations[0], "longest a heavy request waits for a turn before a 503 (env CLUSTO_HEAVY_WAIT)")
	queryTimeout := fs.Duration("query-timeout", heavyDurations[1], "longest a query or an export may run once admitted; beyond, 422 too_expensive (env CLUSTO_QUERY_TIMEOUT)")
	dryRunTimeout := fs.Duration("dry-run-timeout", heavyDurations[2], "longest a plan or a dry run may take, retries after the writes that preempt it included; beyond, 503 if writes held it up, else 422 (env CLUSTO_DRY_RUN_TIMEOUT)")
	defAnswer, ok := envInt(stderr, "CLUSTO_MAX_ANSWER", server.DefaultMaxAnswer, 1, "a positive number of bytes")
	if !ok {
		return 2
	}
	maxAnswer := fs.Int64("max-answer", defAnswer, "largest answer to a query page or an export, in bytes; beyond, 422 too_expensive (env CLUSTO_MAX_ANSWER)")
	insecure := fs.Bool("insecure", envOr("CLUSTO_INSECURE", "") == "true", "serve without authentication on a non-loopback address while no token exists (never do this on a shared network) (env CLUSTO_INSECURE=true)")
	fs.String("config", "", "file of name = value settings, one per line, for any of these flags (env CLUSTO_CONFIG); the command line overrides the environment, which overrides the file")
	if cfg := configPath(args); cfg != "" {
		if err := applyConfigFile(fs, cfg); err != nil {
			fmt.Fprintf(stderr, "clustod serve: %v\n", err)
			return 2
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "clustod serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *backupKeep < 0 {
		fmt.Fprintf(stderr, "clustod serve: --backup-keep %d must be 0 (keep every backup) or more\n", *backupKeep)
		return 2
	}
	if *maxBody <= 0 {
		fmt.Fprintf(stderr, "clustod serve: --max-body must be a positive number of bytes\n")
		return 2
	}
	origins, err := parseOrigins(*allowOrigin)
	if err != nil {
		fmt.Fprintf(stderr, "clustod serve: --allow-origin: %v\n", err)
		return 2
	}
	for _, c := range []struct {
		name string
		ok   bool
		want string
	}{
		{"heavy-running", *heavyRunning > 0, "a positive whole number"},
		{"heavy-queue", *heavyQueue > 0, "a positive whole number"},
		{"heavy-per-token", *heavyPerToken > 0, "a positive whole number"},
		{"heavy-wait", *heavyWait > 0, "a positive duration"},
		{"query-timeout", *queryTimeout > 0, "a positive duration"},
		{"dry-run-timeout", *dryRunTimeout > 0, "a positive duration"},
		{"max-answer", *maxAnswer > 0, "a positive number of bytes"},
	} {
		if !c.ok {
			fmt.Fprintf(stderr, "clustod serve: --%s must be %s\n", c.name, c.want)
			return 2
		}
	}
	// Checked before the lock file or the database is made: a backup
	// directory that is the database's own must stop clustod with nothing
	// touched.
	backups, err := server.ResolveBackupDir(*dbPath, *backupDir)
	if err != nil {
		fmt.Fprintf(stderr, "clustod serve: --backup-dir: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	reg := drivers.Builtin()
	if *driversFile != "" {
		if err := reg.LoadFile(*driversFile); err != nil {
			fmt.Fprintf(stderr, "clustod: %v\n", err)
			return 1
		}
	}
	// The listen address is checked before anything is made; it is bound
	// only once the database is ready to serve.
	resolved, err := net.ResolveTCPAddr("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "clustod serve: --listen %q: %v\n", *listen, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	_, statErr := os.Stat(*dbPath)
	_, lockErr := os.Stat(*dbPath + ".lock")
	unlock, err := lockDatabase(*dbPath)
	if err != nil {
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return 1
	}
	st, err := store.Open(ctx, *dbPath, store.Options{Drivers: reg})
	if err != nil {
		unlock()
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return 1
	}
	// refuse ends a start that cannot serve: what this start created (a
	// new database and its lock file) is removed again, so that a refused
	// configuration leaves nothing behind.
	refuse := func(format string, args ...any) int {
		st.Close()
		if errors.Is(statErr, os.ErrNotExist) {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(*dbPath + suffix)
			}
		}
		unlock()
		if errors.Is(lockErr, os.ErrNotExist) {
			os.Remove(*dbPath + ".lock")
		}
		fmt.Fprintf(stderr, format, args...)
		return 1
	}
	defer unlock()
	defer st.Close()
	if errors.Is(statErr, os.ErrNotExist) {
		// Said out loud: a mistyped --db in a unit file otherwise serves an
		// empty inventory without a word.
		log.Warn("created a new, empty database: no file was at --db", "db", *dbPath)
	}
	if *seed != "" {
		latest, err := st.LatestChange(ctx)
		if err != nil {
			return refuse("clustod: %v\n", err)
		}
		if latest == 0 {
			plan, err := applyFile(ctx, st, *seed, false, false)
			if err != nil {
				return refuse("clustod: loading %s into the new database: %v\n", *seed, err)
			}
			log.Info("loaded seed inventory into the new database", "file", *seed, "created", plan.Create)
		}
	}
	hasTokens, err := st.HasTokens(ctx)
	if err != nil {
		return refuse("clustod: %v\n", err)
	}
	if !hasTokens && !resolved.IP.IsLoopback() && !*insecure {
		return refuse("clustod: refusing to listen on %s without authentication: no API token exists.\n"+
			"Create one first (clustod token create NAME --role admin --db %s), listen on a loopback address, or pass --insecure.\n", *listen, *dbPath)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return refuse("clustod: %v\n", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	anonymous := false
	if !hasTokens {
		switch {
		case addr.IP.IsLoopback():
			anonymous = true
			log.Warn("no API token exists: serving WITHOUT authentication, on loopback only, until one is created (clustod token create NAME --role admin)", "addr", addr.String())
		case *insecure:
			anonymous = true
			log.Warn("no API token exists and --insecure is set: serving WITHOUT authentication on a non-loopback address", "addr", addr.String())
		default:
			// The name resolved to a loopback address above but was bound
			// elsewhere: refused all the same.
			ln.Close()
			return refuse("clustod: refusing to listen on %s without authentication: no API token exists.\n"+
				"Create one first (clustod token create NAME --role admin --db %s), listen on a loopback address, or pass --insecure.\n", addr, *dbPath)
		}
	}
	api := server.New(st, server.Options{Log: log, MaxBodyBytes: *maxBody, AllowAnonymous: anonymous, DriversFile: *driversFile, Version: version, BackupDir: backups, BackupKeep: *backupKeep,
		HeavyRunning: *heavyRunning, HeavyQueue: *heavyQueue, HeavyPerToken: *heavyPerToken, HeavyWait: *heavyWait,
		QueryTimeout: *queryTimeout, DryRunTimeout: *dryRunTimeout, MaxAnswerBytes: *maxAnswer, AllowedOrigins: origins})
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    server.MaxHeaderBytes,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "addr", addr.String(), "db", *dbPath, "authentication", !anonymous, "max_body", *maxBody, "backup_dir", api.BackupDir(), "backup_keep", *backupKeep,
		"heavy_running", *heavyRunning, "heavy_queue", *heavyQueue, "heavy_per_token", *heavyPerToken, "heavy_wait", heavyWait.String(),
		"query_timeout", queryTimeout.String(), "dry_run_timeout", dryRunTimeout.String(), "max_answer", *maxAnswer)
	errc := make(chan error, 1)
	// The listener turns net/http's own plain-text refusals into JSON.
	go func() { errc <- srv.Serve(api.Listener(ln)) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	// Finish requests in flight before closing the database.
	log.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
	}
	log.Info("stopped")
	return 0
}

// cliCaller is who clustod token create and revoke act as in the token
// audit list: whoever can write the database file on the server's host,
// named by their operating-system user.
func cliCaller() entity.Caller {
	name := "uid:" + strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return entity.Caller{Actor: "clustod/" + name}
}

const tokenUsage = `Usage:
  clustod token create NAME --role read|write|admin [--db PATH]
  clustod token list [--db PATH]
  clustod token revoke NAME [--db PATH]
`

func token(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("clustod token "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	var role *string
	if sub == "create" {
		role = fs.String("role", "", "what the token may do: read, write (change the inventory) or admin (also manage tokens)")
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	want := map[string]int{"create": 1, "list": 0, "revoke": 1}
	n, known := want[sub]
	if !known {
		fmt.Fprintf(stderr, "clustod token: unknown command %q\n\n%s", sub, tokenUsage)
		return 2
	}
	if len(pos) != n {
		fmt.Fprintf(stderr, "clustod token %s: wrong number of arguments\n\n%s", sub, tokenUsage)
		return 2
	}
	ctx := context.Background()
	st, err := store.Open(ctx, *dbPath, store.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return 1
	}
	defer st.Close()
	switch sub {
	case "create":
		r, err := entity.ParseRole(*role)
		if err != nil {
			fmt.Fprintf(stderr, "clustod token create: --role: %v\n", err)
			return 2
		}
		secret, tok, err := st.CreateToken(ctx, cliCaller(), pos[0], r)
		if err != nil {
			fmt.Fprintf(stderr, "clustod token create: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "token %q (%s) created; it is shown only this once: keep it now\n", tok.Name, tok.Role)
	case "list":
		toks, err := st.Tokens(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "clustod token list: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
		for _, t := range toks {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.Role, t.CreatedAt.Format(time.RFC3339))
		}
		tw.Flush()
	case "revoke":
		if err := st.RevokeToken(ctx, cliCaller(), pos[0]); err != nil {
			fmt.Fprintf(stderr, "clustod token revoke: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "token %q revoked\n", pos[0])
	}
	return 0
}
