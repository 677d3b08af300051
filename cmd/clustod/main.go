// Command clustod is the clusto inventory server.
//
//	clustod serve [--db PATH] [--listen ADDR] [--drivers FILE] [--max-body BYTES] [--backup-dir DIR] [--backup-keep N] [--insecure]
//	              [--heavy-running N] [--heavy-queue N] [--heavy-per-token N] [--heavy-wait D]
//	              [--query-timeout D] [--dry-run-timeout D] [--max-answer BYTES] [--entity-cache N]
//	clustod token create NAME --role read|write|admin [--db PATH]
//	clustod token list [--db PATH]
//	clustod token revoke NAME [--db PATH]
//
// Flags fall back to the environment: CLUSTO_DB, CLUSTO_LISTEN,
// CLUSTO_DRIVERS, CLUSTO_MAX_BODY, CLUSTO_BACKUP_DIR, CLUSTO_BACKUP_KEEP,
// CLUSTO_HEAVY_RUNNING, CLUSTO_HEAVY_QUEUE, CLUSTO_HEAVY_PER_TOKEN,
// CLUSTO_HEAVY_WAIT, CLUSTO_QUERY_TIMEOUT, CLUSTO_DRY_RUN_TIMEOUT,
// CLUSTO_MAX_ANSWER, CLUSTO_ENTITY_CACHE.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
	"github.com/spf13/pflag"
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
// least min is an error.
func envInt(key string, def, min int64, want string) (int64, error) {
	v := envOr(key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		return 0, fmt.Errorf("%s=%q must be %s", key, v, want)
	}
	return n, nil
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
// value that is not a positive duration is an error.
func envDuration(key string, def time.Duration) (time.Duration, error) {
	v := envOr(key, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q must be a positive duration such as 10s or 2m", key, v)
	}
	return d, nil
}

const dbUsage = "SQLite database file; serve, import, generate and the token commands create it if absent, check, export and backup refuse a missing one (env CLUSTO_DB)"

func dbFlag(fs *pflag.FlagSet) *string {
	return fs.String("db", envOr("CLUSTO_DB", "clusto.db"), dbUsage)
}

func dbFlagVar(fs *pflag.FlagSet, p *string) {
	fs.StringVar(p, "db", envOr("CLUSTO_DB", "clusto.db"), dbUsage)
}

// parseArgs parses a command's flags, which may come before or after its
// positional arguments (clustod token create NAME --role read), and
// returns the positional ones. A mistake is reported on the flag set's
// output with the flags' usage; --help and -h answer with the usage and
// return pflag.ErrHelp.
func parseArgs(fs *pflag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(fs.Output(), "%s: %v\nUsage of %s:\n%s", fs.Name(), err, fs.Name(), fs.FlagUsages())
		}
		return nil, err
	}
	return fs.Args(), nil
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
	fs := pflag.NewFlagSet("clustod token "+sub, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := dbFlag(fs)
	var role *string
	if sub == "create" {
		role = fs.String("role", "", "what the token may do: read, write (change the inventory) or admin (also manage tokens)")
	}
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return flagExit(err)
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
