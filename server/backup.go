package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// Labels of clusto_backups_total.
const (
	backupModeFile     = "file"
	backupModeDownload = "download"
	backupOK           = "ok"
	backupError        = "error"
	backupBusy         = "busy"
)

// runningBackup is the backup in progress, for the answer to a request
// refused while it runs.
type runningBackup struct {
	actor   string
	started time.Time
}

// POST /admin/backup[?download=true] {"name": "nightly.db"} (the body is
// optional): a consistent snapshot of the live database (VACUUM INTO on a
// connection of its own), made while writes go on. Without download it is
// written into the backup directory under name (default
// clusto-<UTC time>.db) and described in a 201; with download=true it is
// the body of a 200, streamed from a temporary file that is gone before
// the first byte is sent.
//
// One backup runs at a time: a request while another is making its
// snapshot is refused with 409 at once rather than queued, so that a
// retrying cron job cannot pile snapshots up. A download holds the slot
// while its snapshot is made, not while it is sent, so that a slow client
// cannot block the nightly backup.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) error {
	download, err := boolParam(r, "download")
	if err != nil {
		return err
	}
	var req entity.BackupRequest
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	if req.Name != "" {
		if err := store.ValidBackupName(req.Name); err != nil {
			return err
		}
	}
	mode := backupModeFile
	if download {
		mode = backupModeDownload
	}
	start := time.Now().UTC()
	me := &runningBackup{actor: actorOf(r), started: start}
	if !s.backupRunning.CompareAndSwap(nil, me) {
		s.metrics.backups.WithLabelValues(mode, backupBusy).Inc()
		other := s.backupRunning.Load()
		msg := "another backup is running; try again when it finishes"
		if other != nil {
			msg = fmt.Sprintf("another backup is running (started by %q %s ago); try again when it finishes",
				other.actor, time.Since(other.started).Round(time.Second))
		}
		return entity.Errorf(entity.KindConflict, "%s", msg).WithCode(reasonBackupRunning)
	}
	release := func() { s.backupRunning.CompareAndSwap(me, nil) }
	defer release()

	dir := s.opts.BackupDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.metrics.backups.WithLabelValues(mode, backupError).Inc()
		return entity.Internal("create the backup directory", err)
	}
	if download {
		return s.downloadBackup(w, r, dir, req.Name, start, release)
	}

	name := req.Name
	if name == "" {
		if name, err = s.backupDir().FreeName(start); err != nil {
			s.metrics.backups.WithLabelValues(mode, backupError).Inc()
			return err
		}
	} else if err := s.backupDir().Taken(name); err != nil {
		return err
	}
	snap, err := s.store.Backup(r.Context(), filepath.Join(dir, name))
	if err != nil {
		if entity.IsKind(err, entity.KindConflict) {
			// Another process took the name meanwhile; the store's message
			// holds the server's path, which stays in the server.
			return store.BackupExists(name)
		}
		s.metrics.backups.WithLabelValues(mode, backupError).Inc()
		return internalOnly("backup", err)
	}
	took := time.Since(start)
	s.backupDone(mode, took)
	s.log.Info("backup written", "request_id", requestIDOf(r), "actor", actorOf(r), "path", filepath.Join(dir, name),
		"bytes", snap.Bytes, "change", snap.Change, "sha256", snap.SHA256, "took_ms", took.Milliseconds())
	// Still holding the one-backup slot, so no other backup adds a file
	// while the old ones are counted.
	pruned, err := s.backupDir().Prune(s.opts.BackupKeep)
	if err != nil {
		s.log.Warn("prune backups", "request_id", requestIDOf(r), "err", err)
	}
	if len(pruned) > 0 {
		s.log.Info("backups pruned", "request_id", requestIDOf(r), "keep", s.opts.BackupKeep, "names", pruned)
	}
	return s.writeJSON(w, r, http.StatusCreated, entity.BackupAnswer{Name: name, Bytes: snap.Bytes, SHA256: snap.SHA256,
		Change: snap.Change, TookMS: took.Milliseconds(), Created: start.Truncate(time.Second), Pruned: pruned})
}

// GET /admin/backups: the backups in the backup directory, newest first.
func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) error {
	files, err := s.backupDir().List()
	if err != nil {
		return entity.Internal("list the backup directory", err)
	}
	if files == nil {
		files = []entity.BackupFile{}
	}
	return s.writeJSON(w, r, http.StatusOK, entity.BackupList{Backups: files, Keep: s.opts.BackupKeep})
}

// DELETE /admin/backups/{name}: remove one backup from the backup
// directory; the answer describes the file removed.
func (s *Server) deleteBackup(w http.ResponseWriter, r *http.Request) error {
	name, err := pathVar(r, "name")
	if err != nil {
		return err
	}
	gone, err := s.backupDir().Delete(name)
	if err != nil {
		return err
	}
	s.log.Info("backup deleted", "request_id", requestIDOf(r), "actor", actorOf(r), "name", name, "bytes", gone.Bytes)
	return s.writeJSON(w, r, http.StatusOK, gone)
}

// backupDir is the catalogue of the server's backup directory.
func (s *Server) backupDir() store.BackupDir {
	return store.BackupDir{Path: s.opts.BackupDir, DB: s.store.Path()}
}

// downloadBackup makes the snapshot in a hidden temporary file in dir,
// releases the one-backup slot, and streams the file as the answer. The
// file is unlinked as soon as it is open, so that nothing is left behind
// whether the client reads it all, goes away, or the server dies.
func (s *Server) downloadBackup(w http.ResponseWriter, r *http.Request, dir, name string, start time.Time, release func()) error {
	mode := backupModeDownload
	if name == "" {
		name = store.DefaultBackupName(start, 1)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, entity.BackupTempPrefix+"download-"+hex.EncodeToString(rnd[:]))
	defer os.Remove(tmp)
	snap, err := s.store.Backup(r.Context(), tmp)
	if err != nil {
		s.metrics.backups.WithLabelValues(mode, backupError).Inc()
		return internalOnly("backup", err)
	}
	took := time.Since(start)
	f, err := os.Open(tmp)
	if err != nil {
		s.metrics.backups.WithLabelValues(mode, backupError).Inc()
		return entity.Internal("open the backup", err)
	}
	defer f.Close()
	if err := os.Remove(tmp); err != nil {
		s.log.Warn("remove a download's temporary file", "request_id", requestIDOf(r), "path", tmp, "err", err)
	}
	release()

	h := w.Header()
	h.Set("Content-Type", "application/vnd.sqlite3")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.FormatInt(snap.Bytes, 10))
	h.Set("X-Clusto-Change", strconv.FormatInt(snap.Change, 10))
	h.Set("X-Clusto-Sha256", snap.SHA256)
	// The file holds the whole inventory and the token hashes.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(w, f)
	if err != nil || n != snap.Bytes {
		// The status is sent; all that is left is to count and log it.
		s.metrics.backups.WithLabelValues(mode, backupError).Inc()
		s.log.Warn("backup download not completed", "request_id", requestIDOf(r), "actor", actorOf(r),
			"sent", n, "bytes", snap.Bytes, "err", fmt.Sprint(err))
		return nil
	}
	s.backupDone(mode, took)
	s.log.Info("backup downloaded", "request_id", requestIDOf(r), "actor", actorOf(r), "name", name,
		"bytes", snap.Bytes, "change", snap.Change, "sha256", snap.SHA256, "took_ms", took.Milliseconds())
	return nil
}

// backupDone records a successful backup whose snapshot took d.
func (s *Server) backupDone(mode string, d time.Duration) {
	s.metrics.backups.WithLabelValues(mode, backupOK).Inc()
	s.metrics.backupTime.Observe(d.Seconds())
	s.metrics.backupLast.SetToCurrentTime()
}

// internalOnly makes err an internal error whatever its kind, so that its
// message (which may name the server's files) reaches only the log.
func internalOnly(op string, err error) error {
	return &entity.Error{Kind: entity.KindInternal, Message: op, Err: err}
}
