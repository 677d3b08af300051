package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func TestCheckFindsBrokenInvariants(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"}, entity.NewEntity{Name: "a", Driver: "server"},
		entity.NewEntity{Name: "b", Driver: "server"}, entity.NewEntity{Name: "sw", Driver: "switch"}, block("net", "10.0.0.0/24"))
	write(t, s, func(tx *store.Tx) error {
		if _, err := tx.Insert("r1", "a", at(1)); err != nil {
			return err
		}
		if _, err := tx.Insert("r1", "b", at(2)); err != nil {
			return err
		}
		if err := tx.Connect(entity.Endpoint{Name: "a", Port: "eth0"}, entity.Endpoint{Name: "sw", Port: "1"}); err != nil {
			return err
		}
		_, err := tx.AllocateIP(entity.IPRequest{Block: "net", Entity: "a", Count: 3})
		return err
	})
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("a healthy inventory has problems: %v %v", p, err)
	}
	// Break things behind the store's back, as a hand edit would.
	handEdit(t, s,
		"DROP INDEX conn_cur_a", "DROP INDEX ipalloc_cur_offset",
		"UPDATE connections SET position = 1 WHERE type = 'contains' AND position = 2",
		`INSERT INTO connections(type, a, b, a_port, b_port, port_type, since)
			SELECT 'link', a, b, a_port, '2', port_type, since FROM connections WHERE type = 'link' AND a_port = 'eth0'`,
		"INSERT INTO ip_allocations(block_id, offset, address, entity_id, since) SELECT block_id, offset, address, entity_id, since FROM ip_allocations LIMIT 1",
	)
	problems, err := s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, p := range problems {
		found[p.Rule] = true
	}
	for _, want := range []string{"rack-overlap", "port-one-link", "link-both-ends", "address-one-holder", "free-space-index"} {
		if !found[want] {
			t.Errorf("check did not report %s; it reported %+v", want, problems)
		}
	}
}

func TestBackupIsAConsistentCopy(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"}, entity.NewEntity{Name: "s1", Driver: "server"})
	base, err := s.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	// Writes go on while the backup copies its snapshot; w<i> is change
	// base+1+i.
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			if err := tryWrite(s, func(tx *store.Tx) error {
				return tx.Create(entity.NewEntity{Name: fmt.Sprintf("w%d", i), Driver: "server"})
			}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	snap, err := s.Backup(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("a write during the backup failed: %v", err)
	}
	_, err = s.Backup(ctx, path)
	wantKind(t, err, entity.KindConflict)

	// The description is of the file as written, before anything opens it.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if snap.Bytes != int64(len(raw)) || snap.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("snapshot says %d bytes, sha256 %s; the file has %d bytes, sha256 %x", snap.Bytes, snap.SHA256, len(raw), sum)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a backup holds token hashes and must be owner-only: %v %v", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), entity.BackupTempPrefix+"*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	b, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Get(ctx, "s1"); err != nil {
		t.Errorf("backup lacks s1: %v", err)
	}
	if p, err := b.Check(ctx); err != nil || len(p) != 0 {
		t.Errorf("backup check: %v %v", p, err)
	}
	// The change it reports is the newest in the file: every entity the
	// writer created up to it is there.
	if latest, err := b.LatestChange(ctx); err != nil || latest != snap.Change {
		t.Errorf("snapshot reports change %d; the file's newest is %d (%v)", snap.Change, latest, err)
	}
	created := int(snap.Change - base) // w0 .. w<created-1>; none when the backup came first
	for _, i := range []int{0, created - 1} {
		if i < 0 || i >= created {
			continue
		}
		if _, err := b.Get(ctx, fmt.Sprintf("w%d", i)); err != nil {
			t.Errorf("backup at change %d lacks w%d: %v", snap.Change, i, err)
		}
	}
	if ok, _ := b.Exists(ctx, fmt.Sprintf("w%d", created)); ok {
		t.Errorf("backup at change %d holds w%d, created by a later change", snap.Change, created)
	}
}

// A backup that cannot finish leaves nothing under its name, nor any
// temporary file.
func TestBackupThatFailsLeavesNothing(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "s1", Driver: "server"})
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.db")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Backup(ctx, path); err == nil {
		t.Fatal("a canceled backup succeeded")
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("a failed backup left %v", left)
	}
	if _, err := s.Backup(context.Background(), filepath.Join(dir, "missing", "backup.db")); err == nil {
		t.Error("a backup into a missing directory succeeded")
	}
}

// TestRestore: a backup replaces the database and is described by the
// snapshot Backup gave; a missing backup is KindNotFound and changes
// nothing.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "live.db")
	s, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	create(t, s, entity.NewEntity{Name: "kept", Driver: "server"})
	backup := filepath.Join(dir, "b.db")
	want, err := s.Backup(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	create(t, s, entity.NewEntity{Name: "after-backup", Driver: "server"})
	s.Close()

	if _, err := store.Restore(ctx, filepath.Join(dir, "typo.db"), db, nil); entity.KindOf(err) != entity.KindNotFound {
		t.Fatalf("restore from a missing file: %v (kind %s), want not_found", err, entity.KindOf(err))
	}
	// A file with a log beside it is not whole without the log.
	os.WriteFile(backup+"-wal", []byte("frames"), 0o600)
	if _, err := store.Restore(ctx, backup, db, nil); entity.KindOf(err) != entity.KindInvalid || !strings.Contains(err.Error(), "write-ahead log") {
		t.Fatalf("restore from a file with a log beside it: %v", err)
	}
	if _, err := store.CheckFile(ctx, backup, nil); entity.KindOf(err) != entity.KindInvalid {
		t.Fatalf("check of a file with a log beside it: %v", err)
	}
	os.Remove(backup + "-wal")
	// The database keeps its permissions (it holds the token hashes).
	os.Chmod(db, 0o600)
	got, err := store.Restore(ctx, backup, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored database: %v %v, want mode 0600 as before", fi.Mode(), err)
	}
	if got.Change != want.Change {
		t.Errorf("restored change %d, the backup holds %d", got.Change, want.Change)
	}
	s, err = store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, "kept"); err != nil {
		t.Errorf("kept: %v", err)
	}
	if _, err := s.Get(ctx, "after-backup"); entity.KindOf(err) != entity.KindNotFound {
		t.Errorf("after-backup is still there after the restore: %v", err)
	}
}

// TestCheckSnapshot checks a backup without writing to it, and refuses
// what is not a current inventory.
func TestCheckSnapshot(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"})
	dir := t.TempDir()
	backup := filepath.Join(dir, "b.db")
	if _, err := s.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(backup)
	problems, err := store.CheckFile(ctx, backup, nil)
	if err != nil || len(problems) != 0 {
		t.Fatalf("check of a sound backup: %v, %v", problems, err)
	}
	if after, _ := os.ReadFile(backup); string(after) != string(before) {
		t.Error("CheckFile changed the file")
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("CheckFile left files beside the backup: %v", left)
	}
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("junk ", 200)), 0o644)
	for _, tc := range []struct {
		path string
		kind entity.ErrorKind
	}{{filepath.Join(dir, "missing.db"), entity.KindNotFound}, {junk, entity.KindInvalid}} {
		if _, err := store.CheckFile(ctx, tc.path, nil); entity.KindOf(err) != tc.kind {
			t.Errorf("%s: %v (kind %s), want %s", tc.path, err, entity.KindOf(err), tc.kind)
		}
	}
}
