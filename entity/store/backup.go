package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// Backup writes a consistent snapshot of the live database to path (which
// must not exist) with VACUUM INTO, while writes go on: it reads one
// snapshot on a connection of its own. The copy is written to a temporary
// file in path's directory, synced, and only then linked under path without
// replacing anything, so that a backup that fails halfway, is canceled or
// crashes never leaves a partial file under that name. The file is readable
// by its owner only: it holds the token hashes too.
func (s *Store) Backup(ctx context.Context, path string) (entity.BackupInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return entity.BackupInfo{}, entity.Errorf(entity.KindInvalid, "backup path %q: %v", path, err)
	}
	if _, err := os.Lstat(abs); err == nil {
		return entity.BackupInfo{}, entity.Errorf(entity.KindConflict, "backup path %s already exists; choose a new file", abs)
	}
	dir := filepath.Dir(abs)
	// VACUUM INTO accepts an existing empty file; creating it here gives it
	// a unique name and owner-only permissions before any data is in it.
	tmp, err := os.CreateTemp(dir, entity.BackupTempPrefix+"*")
	if err != nil {
		return entity.BackupInfo{}, entity.Internal("backup: create a temporary file", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	// Once the snapshot is linked under path this removes only the
	// temporary name; before, it removes the partial copy.
	defer os.Remove(tmpPath)
	if err := s.db.vacuumInto(ctx, tmpPath); err != nil {
		return entity.BackupInfo{}, entity.Internal("backup", err)
	}
	snap, err := describeBackup(ctx, tmpPath)
	if err != nil {
		return entity.BackupInfo{}, err
	}
	if err := linkNew(tmpPath, abs); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return entity.BackupInfo{}, entity.Errorf(entity.KindConflict, "backup path %s already exists; choose a new file", abs)
		}
		return entity.BackupInfo{}, entity.Internal("backup: name the file", err)
	}
	if err := syncDir(dir); err != nil {
		return entity.BackupInfo{}, entity.Internal("backup: sync the directory", err)
	}
	return snap, nil
}

// Restore replaces the database file at dbPath with a copy of the backup
// at backup (a file written by Backup, VACUUM INTO or a Litestream
// restore) and describes what it restored. No process may have dbPath open:
// the caller makes sure of that (clustod holds the serve lock).
//
// The copy is checked, not the backup: opening a file migrates an older
// schema in place, and the backup must stay as it was. The database is
// replaced only once the copy is on disk, opens with this build and passes
// Check, by a rename, so that a crash leaves either the old database or
// the restored one, and a backup that fails leaves the old one untouched.
// A missing backup is an error (KindNotFound), never an empty inventory.
// reg is the driver registry the rules judge the copy by (nil: the
// built-in drivers).
func Restore(ctx context.Context, backup, dbPath string, reg *drivers.Registry) (entity.BackupInfo, error) {
	tmp := dbPath + ".restore"
	removeTmp := func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
	}
	removeTmp() // left by an earlier restore that failed
	snap, err := restoreCopy(ctx, backup, tmp, dbPath, reg)
	if err != nil {
		removeTmp()
		return entity.BackupInfo{}, err
	}
	// The old database's log and index belong to the file being replaced.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			removeTmp()
			return entity.BackupInfo{}, entity.Internal("restore: remove the old database's log", err)
		}
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		removeTmp()
		return entity.BackupInfo{}, entity.Internal("restore: replace the database", err)
	}
	if err := syncDir(filepath.Dir(dbPath)); err != nil {
		return entity.BackupInfo{}, entity.Internal("restore: sync the directory", err)
	}
	return snap, nil
}

// restoreCopy copies backup to tmp and checks the copy. The copy gets the
// permissions of the database it replaces (owner-only for a new one): it
// holds the token hashes.
func restoreCopy(ctx context.Context, backup, tmp, dbPath string, reg *drivers.Registry) (entity.BackupInfo, error) {
	if err := refuseLiveLog(backup); err != nil {
		return entity.BackupInfo{}, err
	}
	perm := fs.FileMode(0o600)
	if fi, err := os.Stat(dbPath); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := copyNew(backup, tmp, perm); err != nil {
		return entity.BackupInfo{}, err
	}
	copied, err := Open(ctx, tmp, Options{Drivers: reg, File: FileOptions{MustExist: true}})
	if err != nil {
		return entity.BackupInfo{}, entity.Errorf(entity.KindInvalid, "backup %s: %v", backup, err)
	}
	problems, err := copied.Check(ctx)
	if cerr := copied.Close(); err == nil && cerr != nil {
		err = entity.Internal("restore: close the checked copy", cerr)
	}
	if err != nil {
		return entity.BackupInfo{}, err
	}
	if len(problems) > 0 {
		return entity.BackupInfo{}, entity.Errorf(entity.KindInvalid, "backup %s does not pass clustod check (%d problems, the first: %s: %s); not restoring",
			backup, len(problems), problems[0].Rule, problems[0].Message)
	}
	// Closing the last connection checkpoints the copy's log into it and
	// removes the log; a log left behind would not follow the rename.
	if _, err := os.Stat(tmp + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		return entity.BackupInfo{}, entity.Errorf(entity.KindInternal, "the checked copy of %s kept a write-ahead log; not restoring", backup)
	}
	return describeBackup(ctx, tmp)
}

// refuseLiveLog refuses a backup with a write-ahead log beside it: the
// file alone lacks the transactions in the log (it is a database in use,
// or one not closed cleanly), and a copy or check of it would silently
// miss them.
func refuseLiveLog(backup string) error {
	if fi, err := os.Stat(backup + "-wal"); err == nil && fi.Size() > 0 {
		return entity.Errorf(entity.KindInvalid, "backup %s has a write-ahead log beside it (%s-wal), so the file alone is not the whole database; "+
			"make a single-file copy of it with clustod backup", backup, backup)
	}
	return nil
}

// copyNew copies the regular file src to a new file dst with permissions
// perm, streaming (a backup can be larger than memory).
func copyNew(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return entity.Errorf(entity.KindNotFound, "backup %s does not exist", src)
	} else if err != nil {
		return entity.Errorf(entity.KindInvalid, "backup %s: %v", src, err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return entity.Internal("restore: read the backup", err)
	} else if !fi.Mode().IsRegular() {
		return entity.Errorf(entity.KindInvalid, "backup %s is not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return entity.Internal("restore: create the copy", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return entity.Internal("restore: copy the backup", err)
	}
	return nil
}

// describeBackup syncs a finished snapshot to disk (VACUUM INTO does not)
// and measures, hashes and reads the newest change from it.
func describeBackup(ctx context.Context, path string) (entity.BackupInfo, error) {
	db, err := openImmutable(path)
	if err != nil {
		return entity.BackupInfo{}, entity.Internal("backup: open the snapshot", err)
	}
	var snap entity.BackupInfo
	err = db.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM changes").Scan(&snap.Change)
	db.Close()
	if err != nil {
		return entity.BackupInfo{}, entity.Internal("backup: read the snapshot's newest change", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return entity.BackupInfo{}, entity.Internal("backup: open the snapshot", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return entity.BackupInfo{}, entity.Internal("backup: sync the snapshot", err)
	}
	h := sha256.New()
	if snap.Bytes, err = io.Copy(h, f); err != nil {
		return entity.BackupInfo{}, entity.Internal("backup: hash the snapshot", err)
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
