package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tree lists every file under dir with its size, mode and time, to tell
// whether anything under it was made, changed or removed.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %v %d %s", rel, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestServeRefusesTheDatabaseDirectoryForBackups: a backup directory that
// holds the database, however it is named (the same path, a relative
// one, one through "..", a symbolic link, the database through a link, a
// trailing slash) and wherever it is set (flag, environment, config
// file), stops clustod serve with a clear message before it makes the
// lock file, the database or the backup directory, and leaves an
// existing database's directory exactly as it was.
func TestServeRefusesTheDatabaseDirectoryForBackups(t *testing.T) {
	bin := clustodBinary(t)
	for _, existing := range []bool{false, true} {
		base := t.TempDir()
		dir := filepath.Join(base, "inv")
		os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		link := filepath.Join(base, "link")
		if err := os.Symlink(dir, link); err != nil {
			t.Fatal(err)
		}
		db := filepath.Join(dir, "inv.db")
		if existing {
			if _, stderr, code := runCLI(t, "token", "list", "--db", db); code != 0 {
				t.Fatalf("make the database: %s", stderr)
			}
		}
		cfg := filepath.Join(base, "clustod.conf")
		if err := os.WriteFile(cfg, []byte("backup-dir = "+dir+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			cwd  string
			env  []string
			args []string
		}{
			{name: "same path", args: []string{"--db", db, "--backup-dir", dir}},
			{name: "relative", cwd: dir, args: []string{"--db", "inv.db", "--backup-dir", "."}},
			{name: "relative database", cwd: base, args: []string{"--db", "inv/inv.db", "--backup-dir", dir}},
			{name: "through dot-dot", args: []string{"--db", db, "--backup-dir", filepath.Join(dir, "sub", "..")}},
			{name: "trailing slash", args: []string{"--db", db, "--backup-dir", dir + "/"}},
			{name: "symbolic link", args: []string{"--db", db, "--backup-dir", link}},
			{name: "database through a link", args: []string{"--db", filepath.Join(link, "inv.db"), "--backup-dir", dir}},
			{name: "environment", env: []string{"CLUSTO_BACKUP_DIR=" + link}, args: []string{"--db", db}},
			{name: "config file", args: []string{"--db", db, "--config", cfg}},
		} {
			t.Run(fmt.Sprintf("%s/existing=%v", c.name, existing), func(t *testing.T) {
				before := tree(t, base)
				// A clustod that starts instead of refusing is killed.
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
				cmd.Dir = c.cwd
				cmd.Env = append(os.Environ(), "CLUSTO_DB=", "CLUSTO_LISTEN=", "CLUSTO_BACKUP_DIR=", "CLUSTO_CONFIG=")
				cmd.Env = append(cmd.Env, c.env...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := cmd.Run()
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 2 {
					t.Fatalf("clustod serve: %v, want exit 2\n%s", err, stderr.String())
				}
				if msg := stderr.String(); !strings.Contains(msg, "clustod serve: --backup-dir: the backup directory") ||
					!strings.Contains(msg, "is the directory of the database") || !strings.Contains(msg, "choose a directory of their own") {
					t.Errorf("stderr does not say why:\n%s", msg)
				}
				if diff := cmp.Diff(before, tree(t, base)); diff != "" {
					t.Errorf("the refused start touched files (-before +after):\n%s", diff)
				}
			})
		}
	}
}

// TestBackupsOverTheAPILeaveTheDatabaseAlone: the real clustod lists and
// deletes only finished backups in its backup directory. A hard link to
// the live database, a backup's temporary file, a log and a lock file
// with backup-like names, and a file that is not a database are neither
// listed nor deleted (400, file kept); the server keeps every write, and
// after a restart the inventory is all there.
func TestBackupsOverTheAPILeaveTheDatabaseAlone(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inv.db")
	backups := filepath.Join(dir, "backups")
	d := startDaemon(t, "--db", db, "--listen", "127.0.0.1:0")
	d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"s1","driver":"server"}`)), 201)
	d.want(d.call("POST", "/api/v1/admin/backup", "", strings.NewReader(`{"name":"b1.db"}`)), 201)
	backup, err := os.ReadFile(filepath.Join(backups, "b1.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Link(db, filepath.Join(backups, "live.db")); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		".clusto-tmp-42": backup,
		"b1.db-wal":      backup,
		"b1.db.lock":     nil,
		"README":         []byte("backups of the inventory\n"),
	} {
		if err := os.WriteFile(filepath.Join(backups, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list := d.want(d.call("GET", "/api/v1/admin/backups", "", nil), 200)
	var names []string
	for _, b := range list.body["backups"].([]any) {
		names = append(names, b.(map[string]any)["name"].(string))
	}
	if diff := cmp.Diff([]string{"b1.db"}, names); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}
	for _, name := range []string{"live.db", ".clusto-tmp-42", "b1.db-wal", "b1.db.lock", "README"} {
		a := d.want(d.call("DELETE", "/api/v1/admin/backups/"+name, "", nil), 400)
		if a.body["error"].(map[string]any)["code"] != "invalid" {
			t.Errorf("DELETE %s: %v", name, a.body)
		}
		if _, err := os.Stat(filepath.Join(backups, name)); err != nil {
			t.Errorf("DELETE %s removed it: %v", name, err)
		}
	}
	d.want(d.call("POST", "/api/v1/entities", "", strings.NewReader(`{"name":"s2","driver":"server"}`)), 201)
	d.want(d.call("DELETE", "/api/v1/admin/backups/b1.db", "", nil), 200)
	if code := d.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	left, _ := os.ReadDir(backups)
	var leftNames []string
	for _, e := range left {
		leftNames = append(leftNames, e.Name())
	}
	want := []string{".clusto-tmp-42", "README", "b1.db-wal", "b1.db.lock", "live.db"}
	slices.Sort(leftNames)
	if diff := cmp.Diff(want, leftNames); diff != "" {
		t.Errorf("backup directory after (-want +got):\n%s", diff)
	}
	d = startDaemon(t, "--db", db, "--listen", "127.0.0.1:0")
	for _, name := range []string{"s1", "s2"} {
		d.want(d.call("GET", "/api/v1/entities/"+name, "", nil), 200)
	}
	d.stop()
}
