package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSeedLoadsTheDemoIntoANewDatabaseOnly(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	demo := filepath.Join("..", "..", "examples", "demo.yaml")
	d := startDaemon(t, "--db", db, "--listen", "127.0.0.1:0", "--seed", demo)
	a := d.want(d.call("GET", "/api/v1/entities/s0004", "", nil), 200)
	if a.body["name"] != "s0004" {
		t.Fatalf("demo not loaded: %v", a.body)
	}
	const created = "created a new, empty database"
	if !strings.Contains(d.log(), created) {
		t.Errorf("a new database was not logged:\n%s", d.log())
	}
	d.want(d.call("DELETE", "/api/v1/entities/s0001?cascade=true", "", nil), 200)
	// While it serves, restore is refused, and so are import and generate,
	// whose long transactions would stall its writes.
	for _, args := range [][]string{
		{"restore", db, "--db", db},
		{"import", demo, "--db", db},
		{"generate", "--db", db, "--racks", "1"},
	} {
		if _, stderr, code := runCLI(t, args...); code != 1 || !strings.Contains(stderr, "in use by a running clustod") {
			t.Errorf("%s while serving: exit %d, %s", args[0], code, stderr)
		}
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// A second start does not load the seed again over the existing data,
	// nor say the database is new.
	d = startDaemon(t, "--db", db, "--listen", "127.0.0.1:0", "--seed", demo)
	d.want(d.call("GET", "/api/v1/entities/s0001", "", nil), 404)
	if strings.Contains(d.log(), created) {
		t.Errorf("an existing database was logged as new:\n%s", d.log())
	}
	d.stop()
}

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "gen.db")
	out, stderr, code := runCLI(t, "generate", "--db", db, "--datacenters", "1", "--racks", "2", "--servers-per-rack", "5")
	if code != 0 || !strings.Contains(out, "generated 31 entities") {
		t.Fatalf("generate: exit %d\n%s%s", code, out, stderr)
	}
	if out, stderr, code = runCLI(t, "check", "--db", db); code != 0 || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("check: exit %d\n%s%s", code, out, stderr)
	}
	backup := filepath.Join(dir, "backup.db")
	if out, stderr, code = runCLI(t, "backup", backup, "--db", db); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, stderr)
	}
	if _, _, code = runCLI(t, "backup", backup, "--db", db); code != 1 {
		t.Errorf("backup over an existing file: exit %d", code)
	}
	exported := filepath.Join(dir, "inv.yaml")
	if _, stderr, code = runCLI(t, "export", "--db", db, "--out", exported); code != 0 {
		t.Fatalf("export: %s", stderr)
	}
	// Import into an empty database, then export again: the same file.
	db2 := filepath.Join(dir, "copy.db")
	if out, stderr, code = runCLI(t, "import", exported, "--db", db2); code != 0 || !strings.Contains(out, "31 to create") {
		t.Fatalf("import: exit %d\n%s%s", code, out, stderr)
	}
	again, _, _ := runCLI(t, "export", "--db", db2)
	first, _ := os.ReadFile(exported)
	if again != string(first) {
		t.Error("export -> import -> export changed the file")
	}
	if out, _, code = runCLI(t, "import", exported, "--db", db2); code != 0 || !strings.Contains(out, "applied 0 changes") {
		t.Errorf("second import: exit %d, %s", code, out)
	}
	// A bad file is refused with its position, and nothing is applied.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("entities:\n  x1: {driver: server}\n  x2: {driver: toaster}\n"), 0o644)
	if _, stderr, code = runCLI(t, "import", bad, "--db", db2); code != 1 || !strings.Contains(stderr, "bad.yaml:3:3") {
		t.Errorf("bad import: exit %d, %s", code, stderr)
	}
	// Restore the backup over the (stopped) database.
	if out, stderr, code = runCLI(t, "restore", backup, "--db", db2); code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, out, stderr)
	}
	if out, _, code = runCLI(t, "check", "--db", db2); code != 0 {
		t.Errorf("check after restore: exit %d, %s", code, out)
	}
	// Restoring from something that is not a sound inventory is refused.
	os.WriteFile(filepath.Join(dir, "junk.db"), []byte("junk"), 0o644)
	if _, _, code = runCLI(t, "restore", filepath.Join(dir, "junk.db"), "--db", db2); code != 1 {
		t.Errorf("restore from junk: exit %d", code)
	}
}

// TestRestoreNeverLosesTheDatabase: a mistyped or bad backup leaves the
// database as it was; the commands that read a database refuse a missing
// one rather than create it; restoring leaves the backup itself untouched.
func TestRestoreNeverLosesTheDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "live.db")
	if out, stderr, code := runCLI(t, "generate", "--db", db, "--datacenters", "1", "--racks", "1", "--servers-per-rack", "3"); code != 0 {
		t.Fatalf("generate: exit %d\n%s%s", code, out, stderr)
	}
	before, _, _ := runCLI(t, "export", "--db", db)
	if !strings.Contains(before, "s1000103") {
		t.Fatalf("generated inventory not exported:\n%s", before)
	}
	unchanged := func(what string) {
		t.Helper()
		if now, stderr, code := runCLI(t, "export", "--db", db); code != 0 || now != before {
			t.Errorf("after %s the database changed (export exit %d, %s)", what, code, stderr)
		}
		if _, err := os.Stat(db + ".restore"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after %s a temporary copy was left behind (stat: %v)", what, err)
		}
	}
	missing := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{
		{"restore", missing, "--db", db},
		{"check", "--db", missing},
		{"export", "--db", missing},
		{"backup", filepath.Join(dir, "b0.db"), "--db", missing},
	} {
		if _, stderr, code := runCLI(t, args...); code != 1 || !strings.Contains(stderr, "does not exist") || !strings.Contains(stderr, "typo.db") {
			t.Errorf("%v: exit %d, %q; want 1 and an error naming the missing file", args, code, stderr)
		}
		if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v created %s (stat: %v)", args, missing, err)
		}
	}
	unchanged("a restore from a missing file")
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("not an inventory ", 100)), 0o644)
	if _, stderr, code := runCLI(t, "restore", junk, "--db", db); code != 1 || !strings.Contains(stderr, "junk.db") {
		t.Errorf("restore from junk: exit %d, %q", code, stderr)
	}
	unchanged("a restore from junk")

	// A real restore: the database becomes the backup, and the backup
	// file stays byte for byte as it was, with no log beside it.
	backup := filepath.Join(dir, "b1.db")
	if out, stderr, code := runCLI(t, "backup", backup, "--db", db); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := runCLI(t, "import", filepath.Join("..", "..", "examples", "demo.yaml"), "--db", db); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	backupBytes, _ := os.ReadFile(backup)
	if out, stderr, code := runCLI(t, "check", "--backup", backup); code != 0 || !strings.HasPrefix(out, "ok: "+backup) {
		t.Errorf("check --backup: exit %d\n%s%s", code, out, stderr)
	}
	if after, _ := os.ReadFile(backup); !bytes.Equal(after, backupBytes) {
		t.Error("check --backup changed the backup file")
	}
	if _, stderr, code := runCLI(t, "check", "--backup", missing); code != 1 || !strings.Contains(stderr, "does not exist") {
		t.Errorf("check --backup of a missing file: exit %d, %q", code, stderr)
	}
	out, stderr, code := runCLI(t, "restore", backup, "--db", db)
	if code != 0 || !strings.Contains(out, "restored "+db+" from "+backup+": change ") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, stderr)
	}
	unchanged("restoring the backup taken before the import")
	if after, _ := os.ReadFile(backup); !bytes.Equal(after, backupBytes) {
		t.Error("restore changed the backup file")
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(backup + suffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("restore left %s%s beside the backup", backup, suffix)
		}
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "clustod.conf")
	demo, _ := filepath.Abs(filepath.Join("..", "..", "examples", "demo.yaml"))
	os.WriteFile(cfg, []byte("# clustod settings\ndb = "+filepath.Join(dir, "from-file.db")+"\nlisten = 127.0.0.1:0\nseed = \""+demo+"\"\n"), 0o644)
	d := startDaemon(t, "--config", cfg)
	d.want(d.call("GET", "/api/v1/entities/rack101", "", nil), 200)
	d.stop()
	if _, err := os.Stat(filepath.Join(dir, "from-file.db")); err != nil {
		t.Errorf("the file's db setting was not used: %v", err)
	}
	// The command line overrides the file.
	d = startDaemon(t, "--config", cfg, "--db", filepath.Join(dir, "from-flag.db"), "--seed", "")
	d.want(d.call("GET", "/api/v1/entities/rack101", "", nil), 404)
	d.stop()
	// A bad setting is refused with its line.
	os.WriteFile(cfg, []byte("db = x.db\ncolour = red\n"), 0o644)
	if _, stderr, code := runCLI(t, "serve", "--config", cfg); code != 2 || !strings.Contains(stderr, "clustod.conf:2: unknown setting \"colour\"") {
		t.Errorf("bad config: exit %d, %s", code, stderr)
	}
}

// The backup directory comes from --backup-dir, CLUSTO_BACKUP_DIR or the
// config file, in that order, else "backups" beside the database; a
// backup made over the API there restores with clustod restore.
func TestBackupDir(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inv.db")
	cfg := filepath.Join(dir, "clustod.conf")
	os.WriteFile(cfg, []byte("backup-dir = "+filepath.Join(dir, "from-file")+"\nbackup-keep = 3\n"), 0o644)
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"default", nil, nil, filepath.Join(dir, "backups")},
		{"flag", []string{"CLUSTO_BACKUP_DIR=" + filepath.Join(dir, "from-env")}, []string{"--backup-dir", filepath.Join(dir, "from-flag")}, filepath.Join(dir, "from-flag")},
		{"env", []string{"CLUSTO_BACKUP_DIR=" + filepath.Join(dir, "from-env")}, []string{"--config", cfg}, filepath.Join(dir, "from-env")},
		{"file", nil, []string{"--config", cfg}, filepath.Join(dir, "from-file")},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := startDaemonEnv(t, c.env, append([]string{"--db", db, "--listen", "127.0.0.1:0"}, c.args...)...)
			wantKeep := 0.0 // JSON numbers decode as float64
			if slices.Contains(c.args, "--config") {
				wantKeep = 3 // from the file: no flag or variable sets it
			}
			if got := d.logLines()[len(d.logLines())-1]; got["msg"] != "serving" || got["backup_dir"] != c.want || got["backup_keep"] != wantKeep {
				t.Errorf("serving log line %v, want backup_dir %s and backup_keep %v", got, c.want, wantKeep)
			}
			d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"s-`+c.name+`","driver":"server"}`)), 201)
			a := d.want(d.call("POST", "/api/v1/admin/backup", "", strings.NewReader(`{"name":"b.db"}`)), 201)
			if a.body["name"] != "b.db" {
				t.Errorf("answer %v", a.body)
			}
			fi, err := os.Stat(c.want)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("backup directory %s: %v %v", c.want, fi, err)
			}
			d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"after-`+c.name+`","driver":"server"}`)), 201)
			if code := d.stop(); code != 0 {
				t.Fatalf("exit %d", code)
			}
			if c.name != "default" {
				return
			}
			// The documented restore: stop the server, restore, start it.
			if out, stderr, code := runCLI(t, "restore", filepath.Join(c.want, "b.db"), "--db", db); code != 0 {
				t.Fatalf("restore: exit %d\n%s%s", code, out, stderr)
			}
			d = startDaemon(t, "--db", db, "--listen", "127.0.0.1:0")
			d.want(d.call("GET", "/api/v1/entities/s-default", "", nil), 200)
			d.want(d.call("GET", "/api/v1/entities/after-default", "", nil), 404)
			d.stop()
		})
	}
}

// TestOneArgumentCommandsUsage: import, backup and restore take exactly one
// argument; anything else is misuse (exit 2, with the usage), and -h is not.
func TestOneArgumentCommandsUsage(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		code  int
		usage string
	}{
		{[]string{"import"}, 2, "usage: clustod import FILE"},
		{[]string{"backup", "a.db", "b.db"}, 2, "usage: clustod backup PATH"},
		{[]string{"restore"}, 2, "usage: clustod restore BACKUP"},
		{[]string{"restore", "-h"}, 0, "-db"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.usage) {
			t.Errorf("clustod %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.usage)
		}
	}
}

// TestHeavyLimitsConfigured: the bounds on heavy requests come from flags,
// the environment and the config file, in that order, else their
// defaults; the serving log line states them, and the server applies
// them (a query answer over --max-answer is refused with 422).
func TestHeavyLimitsConfigured(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inv.db")
	cfg := filepath.Join(dir, "clustod.conf")
	os.WriteFile(cfg, []byte("heavy-per-token = 1\nquery-timeout = 5s\nheavy-queue = 9\n"), 0o644)
	d := startDaemonEnv(t, []string{"CLUSTO_QUERY_TIMEOUT=3s", "CLUSTO_DRY_RUN_TIMEOUT=1m"},
		"--db", db, "--listen", "127.0.0.1:0", "--config", cfg, "--max-answer", "200", "--heavy-running", "3")
	var serving map[string]any
	for _, l := range d.logLines() {
		if l["msg"] == "serving" {
			serving = l
		}
	}
	got := map[string]any{}
	for _, k := range []string{"heavy_running", "heavy_queue", "heavy_per_token", "heavy_wait", "query_timeout", "dry_run_timeout", "max_answer"} {
		got[k] = serving[k]
	}
	want := map[string]any{"heavy_running": 3.0, "heavy_queue": 9.0, "heavy_per_token": 1.0, "heavy_wait": "10s",
		"query_timeout": "3s", "dry_run_timeout": "1m0s", "max_answer": 200.0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("serving log line (-want +got):\n%s", diff)
	}
	d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"s1","driver":"server"}`)), 201)
	a := d.want(d.call("GET", "/api/v1/query?q=*", "", nil), 422)
	if e := a.body["error"].(map[string]any); e["code"] != "too_expensive" || e["reason"] != "max-answer" {
		t.Errorf("query over --max-answer: %v", a.body)
	}
	d.stop()
}
