package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/schema"
)

func tables(t *testing.T, db *file) []string {
	t.Helper()
	rows, err := db.read.Query("SELECT name FROM sqlite_schema WHERE type IN ('table','index') AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return names
}

func TestMigrateEmptyThenExisting(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "inv.db")
	db, err := openFile(ctx, path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.version(ctx)
	if err != nil || v != schema.LatestVersion() || v < 1 {
		t.Fatalf("version of a new file = %d (%v), want %d", v, err, schema.LatestVersion())
	}
	first := tables(t, db)
	for _, want := range []string{"changes", "entities", "attrs", "connections", "entities_cur_name"} {
		if !contains(first, want) {
			t.Errorf("new schema lacks %s", want)
		}
	}
	if _, err := db.write.Exec("INSERT INTO changes(at, actor, op) VALUES ('2026-01-01T00:00:00Z', 't', 'create')"); err != nil {
		t.Fatal(err)
	}
	db.close()

	// Reopening an existing file keeps its data and applies nothing twice.
	db, err = openFile(ctx, path, FileOptions{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.close()
	if diff := cmp.Diff(first, tables(t, db)); diff != "" {
		t.Errorf("schema changed on reopen (-first +second):\n%s", diff)
	}
	var n int
	db.read.QueryRow("SELECT count(*) FROM changes").Scan(&n)
	if n != 1 {
		t.Errorf("reopened file has %d changes, want 1", n)
	}
	// Pragmas reach pooled connections, and readers are read-only.
	var fk, busy int
	var mode string
	db.read.QueryRow("PRAGMA foreign_keys").Scan(&fk)
	db.read.QueryRow("PRAGMA busy_timeout").Scan(&busy)
	db.write.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if fk != 1 || busy <= 0 || mode != "wal" {
		t.Errorf("foreign_keys=%d busy_timeout=%d journal_mode=%s", fk, busy, mode)
	}
	if _, err := db.read.Exec("DELETE FROM changes"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// TestMigration4FoldsThePortIndex: a version-3 file with cables migrates;
// conn_cur_a then keeps a port to one current link (as conn_cur_port did)
// without constraining containment or membership, and finds a port's link
// by index.
func TestMigration4FoldsThePortIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "inv.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:3] {
		if _, err := raw.Exec(m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	for _, q := range []string{
		"PRAGMA user_version = 3",
		"INSERT INTO entity_ids(id) VALUES (1), (2), (3)",
		"INSERT INTO changes(id, at, actor, op) VALUES (1, '2026-01-01T00:00:00Z', 't', 'link')",
		`INSERT INTO connections(type, a, b, a_port, b_port, port_type, since) VALUES
			('link', 1, 2, 'eth0', '1', 'nic', 1), ('link', 2, 1, '1', 'eth0', 'nic', 1)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db, err := openFile(ctx, path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.close()
	if v, _ := db.version(ctx); v < 4 {
		t.Fatalf("version %d after migrating", v)
	}
	if names := tables(t, db); contains(names, "conn_cur_port") || !contains(names, "conn_cur_a") {
		t.Errorf("indexes after migrating: %v", names)
	}
	var n int
	db.read.QueryRow("SELECT count(*) FROM connections WHERE type = 'link' AND until IS NULL").Scan(&n)
	if n != 2 {
		t.Errorf("%d current link rows after migrating, want 2", n)
	}
	_, err = db.write.Exec("INSERT INTO connections(type, a, b, a_port, b_port, port_type, since) VALUES ('link', 1, 3, 'eth0', '2', 'nic', 1)")
	if !schema.IsUniqueViolation(err) {
		t.Errorf("a second current link on port eth0: %v, want a unique violation", err)
	}
	for _, q := range []string{
		// Many children and members share a parent or group: NULL ports.
		"INSERT INTO connections(type, a, b, since) VALUES ('contains', 1, 2, 1), ('contains', 1, 3, 1)",
		"INSERT INTO connections(type, a, b, since) VALUES ('member', 1, 2, 1), ('member', 1, 3, 1)",
		// The port is free again once its link has ended.
		"UPDATE connections SET until = 1 WHERE type = 'link' AND a = 1",
		"INSERT INTO connections(type, a, b, a_port, b_port, port_type, since) VALUES ('link', 1, 3, 'eth0', '2', 'nic', 1)",
	} {
		if _, err := db.write.Exec(q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	rows, err := db.read.Query("EXPLAIN QUERY PLAN SELECT b, b_port FROM connections WHERE a = ? AND a_port = ? AND type = 'link' AND until IS NULL", 1, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		plan = append(plan, detail)
	}
	rows.Close()
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX conn_cur_a (a=? AND type=? AND a_port=?)") {
		t.Errorf("a port's link is not found through conn_cur_a: %q", plan)
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "inv.db")
	db, err := openFile(ctx, path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	db.close()
	_, err = openFile(ctx, path, FileOptions{})
	if !errors.Is(err, schema.ErrTooNew) {
		t.Fatalf("opening a newer file: err = %v, want ErrTooNew", err)
	}
	// And the file was not touched.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var v int
	raw.QueryRow("PRAGMA user_version").Scan(&v)
	if v != 999 {
		t.Errorf("user_version changed to %d", v)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := openFile(ctx, "", FileOptions{}); err == nil {
		t.Error("empty path accepted")
	}
	dir := t.TempDir()
	if _, err := openFile(ctx, filepath.Join(dir, "missing", "dir", "inv.db"), FileOptions{}); err == nil {
		t.Error("a path in a missing directory was accepted")
	}
	// A file that is not SQLite is refused.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("this is not a database, just text that is long enough to be a header....................."), 0o644)
	if _, err := openFile(ctx, junk, FileOptions{}); err == nil {
		t.Error("a non-SQLite file was accepted")
	}
	// Odd characters in the path are escaped into the URI, not parsed as parameters.
	odd := filepath.Join(dir, "a?mode=ro#x.db")
	db, err := openFile(ctx, odd, FileOptions{})
	if err != nil {
		t.Fatalf("path with ? and #: %v", err)
	}
	db.close()
	if _, err := os.Stat(odd); err != nil {
		t.Errorf("file not created at the literal path: %v", err)
	}
}

// TestOpenMustExist: with MustExist a missing file is an error matching
// fs.ErrNotExist and nothing is created; an existing file opens.
func TestOpenMustExist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "inv.db")
	_, err := openFile(ctx, path, FileOptions{MustExist: true})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: got %v, want an error matching fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the missing file was created (stat: %v)", err)
	}
	db, err := openFile(ctx, path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db.close()
	db, err = openFile(ctx, path, FileOptions{MustExist: true})
	if err != nil {
		t.Fatalf("existing file: %v", err)
	}
	db.close()
}

func TestRegexpFunction(t *testing.T) {
	db, err := openFile(context.Background(), filepath.Join(t.TempDir(), "inv.db"), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.close()
	tests := []struct {
		text, re string
		want     int
	}{{"s0012", "^s[0-9]{4}$", 1}, {"s12", "^s[0-9]{4}$", 0}, {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "^(a+)+$", 0}, {"aaab", "a+b", 1}}
	for _, tc := range tests {
		var got int
		if err := db.read.QueryRow("SELECT ? REGEXP ?", tc.text, tc.re).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%q REGEXP %q = %d, want %d", tc.text, tc.re, got, tc.want)
		}
	}
	if err := db.read.QueryRow("SELECT 'x' REGEXP '('").Scan(new(int)); err == nil {
		t.Error("a bad pattern did not fail")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestMapBytesMapsOnlyTheReaders: FileOptions.MapBytes sets every read
// connection's mmap_size, and neither the writer's nor, without it, the
// readers'.
func TestMapBytesMapsOnlyTheReaders(t *testing.T) {
	ctx := context.Background()
	mmap := func(db *sql.DB) int64 {
		t.Helper()
		var n int64
		if err := db.QueryRowContext(ctx, "PRAGMA mmap_size").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, want := range []int64{0, 1 << 30} {
		db, err := openFile(ctx, filepath.Join(t.TempDir(), "inv.db"), FileOptions{MapBytes: want})
		if err != nil {
			t.Fatal(err)
		}
		if got := mmap(db.read); got != want {
			t.Errorf("MapBytes %d: readers map %d", want, got)
		}
		if got := mmap(db.write); got != 0 {
			t.Errorf("MapBytes %d: the writer maps %d", want, got)
		}
		db.close()
	}
}
