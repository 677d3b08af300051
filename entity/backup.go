package entity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clusto/clusto/schema"
)

// BackupTempPrefix starts the names of the temporary files a backup is
// written to before it takes its final name. The leading dot keeps them out
// of a plain ls and out of the names the server accepts for a backup, so
// that a temporary file is never taken for a finished backup. One left
// behind (only a crash of the process can leave one) is safe to delete.
const BackupTempPrefix = ".clusto-tmp-"

// Snapshot describes a backup file written by Backup.
type Snapshot struct {
	// Bytes is the size of the file.
	Bytes int64
	// SHA256 is the hex SHA-256 of the file, to check a copy of it against.
	SHA256 string
	// Change is the newest change the snapshot holds (0 for an empty
	// inventory), read from the snapshot itself: everything up to and
	// including it is in the file, nothing after it.
	Change int64
}

// Backup writes a consistent snapshot of the live database to path (which
// must not exist) with VACUUM INTO, while writes go on: it reads one
// snapshot on a connection of its own. The copy is written to a temporary
// file in path's directory, synced, and only then linked under path without
// replacing anything, so that a backup that fails halfway, is canceled or
// crashes never leaves a partial file under that name. The file is readable
// by its owner only: it holds the token hashes too.
func (s *Store) Backup(ctx context.Context, path string) (Snapshot, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Snapshot{}, Errorf(KindInvalid, "backup path %q: %v", path, err)
	}
	if _, err := os.Lstat(abs); err == nil {
		return Snapshot{}, Errorf(KindConflict, "backup path %s already exists; choose a new file", abs)
	}
	dir := filepath.Dir(abs)
	// VACUUM INTO accepts an existing empty file; creating it here gives it
	// a unique name and owner-only permissions before any data is in it.
	tmp, err := os.CreateTemp(dir, BackupTempPrefix+"*")
	if err != nil {
		return Snapshot{}, Internal("backup: create a temporary file", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	// Once the snapshot is linked under path this removes only the
	// temporary name; before, it removes the partial copy.
	defer os.Remove(tmpPath)
	if err := s.db.VacuumInto(ctx, tmpPath); err != nil {
		return Snapshot{}, Internal("backup", err)
	}
	snap, err := describeSnapshot(ctx, tmpPath)
	if err != nil {
		return Snapshot{}, err
	}
	if err := linkNew(tmpPath, abs); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Snapshot{}, Errorf(KindConflict, "backup path %s already exists; choose a new file", abs)
		}
		return Snapshot{}, Internal("backup: name the file", err)
	}
	if err := syncDir(dir); err != nil {
		return Snapshot{}, Internal("backup: sync the directory", err)
	}
	return snap, nil
}

// describeSnapshot syncs a finished snapshot to disk (VACUUM INTO does not)
// and measures, hashes and reads the newest change from it.
func describeSnapshot(ctx context.Context, path string) (Snapshot, error) {
	db, err := schema.OpenSnapshot(path)
	if err != nil {
		return Snapshot{}, Internal("backup: open the snapshot", err)
	}
	var snap Snapshot
	err = db.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM changes").Scan(&snap.Change)
	db.Close()
	if err != nil {
		return Snapshot{}, Internal("backup: read the snapshot's newest change", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return Snapshot{}, Internal("backup: open the snapshot", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return Snapshot{}, Internal("backup: sync the snapshot", err)
	}
	h := sha256.New()
	if snap.Bytes, err = io.Copy(h, f); err != nil {
		return Snapshot{}, Internal("backup: hash the snapshot", err)
	}
	snap.SHA256 = hex.EncodeToString(h.Sum(nil))
	return snap, nil
}

// linkNew gives the file at tmp the name path, failing with fs.ErrExist
// rather than replacing a file already there. A hard link is atomic and
// never replaces; on a file system without hard links it falls back to a
// check and a rename, which could only lose a race with another process
// creating the same name in that instant.
func linkNew(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(path); serr == nil {
		return fs.ErrExist
	}
	return os.Rename(tmp, path)
}

// syncDir makes a new name in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
