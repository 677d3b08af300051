package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invfile"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
	"github.com/spf13/pflag"
)

// lockDatabase takes an exclusive advisory lock on PATH.lock for as long as
// a process uses the database as its server, so that restore can refuse
// to replace a file in use, and import and generate, whose long
// transactions would stall the server's writes, refuse to run beside it.
func lockDatabase(path string) (func(), error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by a running clustod", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// driversFlag is the --drivers flag of the commands that judge an
// inventory by its rules (check, restore), which read the drivers: give
// them the file clustod serve is given.
func driversFlag(fs *pflag.FlagSet) *string {
	return fs.String("drivers", envOr("CLUSTO_DRIVERS", ""), "JSON file of extra drivers, the one clustod serve is given: the rules read the drivers (env CLUSTO_DRIVERS)")
}

// loadDrivers returns the built-in drivers with those of file, if any.
func loadDrivers(file string) (*drivers.Registry, error) {
	reg := drivers.Builtin()
	if file != "" {
		if err := reg.LoadFile(file); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// openStore opens the database at path, creating it when create is set.
// Commands that read a database (check, export, backup) pass false, so that
// a mistyped --db is an error rather than a new, empty inventory.
func openStore(ctx context.Context, path string, create bool, stderr io.Writer) (*store.Store, bool) {
	s, err := store.Open(ctx, path, store.Options{File: store.FileOptions{MustExist: !create}})
	if err != nil {
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return nil, false
	}
	return s, true
}

// openUnserved opens the database for a command whose long transactions
// would stall a server's writes: it holds the serve lock (refusing, with
// hint, a database a clustod serves) until done is called.
func openUnserved(ctx context.Context, cmd, path, hint string, stderr io.Writer) (s *store.Store, done func(), ok bool) {
	unlock, err := lockDatabase(path)
	if err != nil {
		fmt.Fprintf(stderr, "clustod %s: %v; %s\n", cmd, err, hint)
		return nil, nil, false
	}
	if s, ok = openStore(ctx, path, true, stderr); !ok {
		unlock()
		return nil, nil, false
	}
	return s, func() { s.Close(); unlock() }, true
}

// applyFile applies an inventory file to the store in one write
// transaction, a window of the file at a time (invfile.Import).
func applyFile(ctx context.Context, s *store.Store, path string, prune, dryRun bool) (invfile.Summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return invfile.Summary{}, err
	}
	return invfile.Import(ctx, s, filepath.Base(path), data, invfile.ImportOptions{Prune: prune, DryRun: dryRun, Actor: "clustod"})
}

// importMemoryLimit is the Go heap's soft limit for clustod import. The
// import keeps some 200 MB live for a 100k-entity file (the file's edges
// and names, the write transaction's bookkeeping, the rule check at
// commit), and with the default GOGC the heap would grow to twice that
// between collections; the limit has the collector run sooner instead, at
// about the same CPU (docs/performance.md). A larger file may need more:
// past the limit the runtime caps the collector at half the CPU.
const importMemoryLimit = 400 << 20

// setImportMemoryLimit applies importMemoryLimit unless the operator set
// GOMEMLIMIT.
func setImportMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(importMemoryLimit)
	}
}

// clustod import FILE [--prune] [--dry-run]
func importCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("clustod import", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	prune := fs.Bool("prune", false, "also delete what the file does not name")
	dryRun := fs.Bool("dry-run", false, "check and count the changes without applying them")
	file, code, ok := oneArg(fs, args, "usage: clustod import FILE [--prune] [--dry-run] [--db PATH]")
	if !ok {
		return code
	}
	// The file applies as one batch, holding the writer throughout.
	ctx := context.Background()
	setImportMemoryLimit()
	s, closeStore, ok := openUnserved(ctx, "import", *dbPath, "stop it first, or send the file to it with clusto apply", stderr)
	if !ok {
		return 1
	}
	defer closeStore()
	start := time.Now()
	plan, err := applyFile(ctx, s, file, *prune, *dryRun)
	if err != nil {
		fmt.Fprintf(stderr, "clustod import: %v\n", err)
		return 1
	}
	verb := "applied"
	if *dryRun {
		verb = "would apply"
	}
	fmt.Fprintf(stdout, "%s %d changes: %d to create, %d to change, %d to delete (%v)\n", verb, plan.Steps, plan.Create, plan.Change, plan.Delete, time.Since(start).Round(time.Millisecond))
	return 0
}

// clustod export [--out FILE]
func exportCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("clustod export", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	out := fs.String("out", "", "write to this file instead of standard output")
	if _, err := parseArgs(fs, args); err != nil {
		return flagExit(err)
	}
	ctx := context.Background()
	s, ok := openStore(ctx, *dbPath, false, stderr)
	if !ok {
		return 1
	}
	defer s.Close()
	if *out == "" {
		if err := invfile.Export(ctx, s, nil, stdout); err != nil {
			fmt.Fprintf(stderr, "clustod export: %v\n", err)
			return 1
		}
		return 0
	}
	// Written beside the target and renamed into place: a failed export
	// leaves no half file under the name asked for.
	tmp := *out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err == nil {
		err = invfile.Export(ctx, s, nil, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, *out)
		}
		if err != nil {
			os.Remove(tmp)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "clustod export: %v\n", err)
		return 1
	}
	return 0
}

// clustod generate --datacenters N --racks N --servers-per-rack N
func generateCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("clustod generate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	dcs := fs.Int("datacenters", 1, "datacenters to build")
	racks := fs.Int("racks", 10, "racks in each datacenter")
	servers := fs.Int("servers-per-rack", 38, "servers in each rack (at most 38)")
	seed := fs.Uint64("seed", 1, "seed for attribute values")
	if _, err := parseArgs(fs, args); err != nil {
		return flagExit(err)
	}
	// Each of its transactions holds the writer for seconds.
	ctx := context.Background()
	s, closeStore, ok := openUnserved(ctx, "generate", *dbPath, "stop it first, or generate into another file", stderr)
	if !ok {
		return 1
	}
	defer closeStore()
	sp := invgen.Spec{Datacenters: *dcs, RacksPerDC: *racks, ServersPerRack: *servers, Seed: *seed}
	start := time.Now()
	if err := invgen.Build(ctx, s, sp); err != nil {
		fmt.Fprintf(stderr, "clustod generate: %v\n", err)
		return 1
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "generated %d entities in %v (%.0f entities/s)\n", sp.Entities(), el.Round(time.Millisecond), float64(sp.Entities())/el.Seconds())
	return 0
}

// clustod check: integrity and invariants; non-zero exit on any problem.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("clustod check", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	driversFile := driversFlag(fs)
	backup := fs.String("backup", "", "check this backup file instead, without writing to it (its SHA-256 stays as reported)")
	asJSON := fs.Bool("json", false, "print the problems as JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return flagExit(err)
	}
	reg, err := loadDrivers(*driversFile)
	if err != nil {
		fmt.Fprintf(stderr, "clustod check: %v\n", err)
		return 2
	}
	ctx := context.Background()
	var problems []entity.Problem
	checked := *dbPath
	if *backup != "" {
		checked = *backup
		problems, err = store.CheckFile(ctx, *backup, reg)
	} else {
		s, ok := openStore(ctx, *dbPath, false, stderr)
		if !ok {
			return 1
		}
		defer s.Close()
		problems, err = s.CheckWith(ctx, reg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "clustod check: %v\n", err)
		return 1
	}
	if *asJSON {
		if problems == nil {
			problems = []entity.Problem{}
		}
		json.NewEncoder(stdout).Encode(map[string]any{"problems": problems})
	} else {
		for _, p := range problems {
			fmt.Fprintf(stdout, "%s: %s", p.Rule, p.Message)
			if len(p.Entities) > 0 {
				fmt.Fprintf(stdout, " (%v)", p.Entities)
			}
			fmt.Fprintln(stdout)
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "clustod check: %d problems in %s\n", len(problems), checked)
		return 1
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "ok: %s passes the integrity check and every inventory invariant\n", checked)
	}
	return 0
}

// clustod backup PATH: a consistent snapshot while the server keeps serving.
func backupCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("clustod backup", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	dest, code, ok := oneArg(fs, args, "usage: clustod backup PATH [--db PATH]")
	if !ok {
		return code
	}
	ctx := context.Background()
	s, ok := openStore(ctx, *dbPath, false, stderr)
	if !ok {
		return 1
	}
	defer s.Close()
	snap, err := s.Backup(ctx, dest)
	if err != nil {
		fmt.Fprintf(stderr, "clustod backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s: change %d, %d bytes, sha256 %s\n", *dbPath, dest, snap.Change, snap.Bytes, snap.SHA256)
	return 0
}

// clustod restore BACKUP: replace the database with a backup, refusing
// while a clustod serves it.
func restoreCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("clustod restore", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	driversFile := driversFlag(fs)
	backup, code, ok := oneArg(fs, args, "usage: clustod restore BACKUP [--db PATH] [--drivers FILE]")
	if !ok {
		return code
	}
	reg, err := loadDrivers(*driversFile)
	if err != nil {
		fmt.Fprintf(stderr, "clustod restore: %v\n", err)
		return 2
	}
	unlock, err := lockDatabase(*dbPath)
	if err != nil {
		fmt.Fprintf(stderr, "clustod restore: %v; stop it first\n", err)
		return 1
	}
	defer unlock()
	snap, err := store.Restore(context.Background(), backup, *dbPath, reg)
	if err != nil {
		fmt.Fprintf(stderr, "clustod restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s from %s: change %d, %d bytes, sha256 %s\n", *dbPath, backup, snap.Change, snap.Bytes, snap.SHA256)
	return 0
}

// oneArg parses a command's flags around its one argument. When that
// fails, ok is false and code is the exit code (0 for -h, 2 for misuse,
// with usage printed to the flag set's output).
func oneArg(fs *pflag.FlagSet, args []string, usage string) (arg string, code int, ok bool) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", flagExit(err), false
	}
	if len(pos) != 1 {
		fmt.Fprintln(fs.Output(), usage)
		return "", 2, false
	}
	return pos[0], 0, true
}

func flagExit(err error) int {
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	return 2
}
