// Command clustod is the clusto inventory server.
//
//	clustod serve --db PATH [--listen ADDR] [--drivers FILE]
//
// Flags fall back to the environment: CLUSTO_DB, CLUSTO_LISTEN, CLUSTO_DRIVERS.
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
	"syscall"
	"time"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/server"
)

const usage = `clustod - the clusto inventory server

Usage:
  clustod serve [flags]     open (creating and migrating) the database and serve the API
  clustod version           print the version

Run 'clustod serve --help' for its flags.
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

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("clustod serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := fs.String("db", envOr("CLUSTO_DB", "clusto.db"), "SQLite database file, created if absent (env CLUSTO_DB)")
	listen := fs.String("listen", envOr("CLUSTO_LISTEN", "127.0.0.1:8642"), "address to listen on (env CLUSTO_LISTEN)")
	driversFile := fs.String("drivers", envOr("CLUSTO_DRIVERS", ""), "JSON file of extra drivers (env CLUSTO_DRIVERS)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	store, err := entity.Open(ctx, *dbPath, entity.Options{Drivers: reg})
	if err != nil {
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return 1
	}
	defer store.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: server.New(store, log), ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving", "addr", ln.Addr().String(), "db", *dbPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "clustod: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	// Finish requests in flight before closing the database.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
	}
	log.Info("stopped")
	return 0
}
