package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// envNames maps serve's flags to their environment variables.
var envNames = map[string]string{
	"db": "CLUSTO_DB", "listen": "CLUSTO_LISTEN", "drivers": "CLUSTO_DRIVERS", "max-body": "CLUSTO_MAX_BODY",
	"seed": "CLUSTO_SEED", "insecure": "CLUSTO_INSECURE", "backup-dir": "CLUSTO_BACKUP_DIR",
	"backup-keep": "CLUSTO_BACKUP_KEEP", "allow-origin": "CLUSTO_ALLOW_ORIGIN", "heavy-running": "CLUSTO_HEAVY_RUNNING", "heavy-queue": "CLUSTO_HEAVY_QUEUE",
	"heavy-per-token": "CLUSTO_HEAVY_PER_TOKEN", "heavy-wait": "CLUSTO_HEAVY_WAIT", "query-timeout": "CLUSTO_QUERY_TIMEOUT",
	"dry-run-timeout": "CLUSTO_DRY_RUN_TIMEOUT", "max-answer": "CLUSTO_MAX_ANSWER", "entity-cache": "CLUSTO_ENTITY_CACHE",
}

// configPath finds --config FILE (or --config=FILE) among args, else
// CLUSTO_CONFIG.
func configPath(args []string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, "config="); ok {
			return v
		}
		if a == "config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("CLUSTO_CONFIG")
}

// applyConfigFile sets flags from a config file of `name = value` lines
// (# comments, blank lines allowed; names are the flags' names). A value
// applies only when the flag's environment variable is unset, and flags on
// the command line, parsed afterwards, override both: command line, then
// environment, then file, then default.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			return fmt.Errorf("%s:%d: expected name = value", path, line)
		}
		name, value = strings.TrimSpace(name), strings.Trim(strings.TrimSpace(value), `"`)
		if name == "config" || fs.Lookup(name) == nil {
			return fmt.Errorf("%s:%d: unknown setting %q", path, line, name)
		}
		if env := envNames[name]; env != "" && os.Getenv(env) != "" {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %v", path, line, name, err)
		}
	}
	return sc.Err()
}
