package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clusto/clusto/entity"
)

// Labels of clusto_backups_total.
const (
	backupModeFile     = "file"
	backupModeDownload = "download"
	backupOK           = "ok"
	backupError        = "error"
	backupBusy         = "busy"
)

// backupNameMax bounds a backup's file name, well under any file system's
// limit once the server's temporary suffixes are added.
const backupNameMax = 128

// backupNameChars are the characters a backup's name may hold: enough for
// dates and labels, and nothing a shell, a URL or a Content-Disposition
// header would need to quote.
var backupNameChars = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// validBackupName refuses any name but a plain file name in the backup
// directory: no directory part, no "..", no leading dot, which is kept
// for the server's temporary files (entity.BackupTempPrefix), and none of
// the endings SQLite and clustod give a database's companion files
// (-wal, -shm, -journal, .lock), so that no backup can be mistaken for
// one, nor one for a backup.
func validBackupName(name string) error {
	const hint = "; a backup name is a plain file name such as nightly.db"
	switch {
	case strings.ContainsAny(name, `/\`):
		return entity.Errorf(entity.KindInvalid, "backup name %q holds a directory separator; backups are written only into the server's backup directory"+hint, name)
	case strings.Contains(name, ".."):
		return entity.Errorf(entity.KindInvalid, "backup name %q must not contain \"..\""+hint, name)
	case strings.HasPrefix(name, "."):
		return entity.Errorf(entity.KindInvalid, "backup name %q must not start with '.' (hidden names are the server's temporary files)"+hint, name)
	case strings.HasPrefix(name, "-"):
		return entity.Errorf(entity.KindInvalid, "backup name %q must not start with '-'"+hint, name)
	case len(name) > backupNameMax:
		return entity.Errorf(entity.KindInvalid, "backup name is %d characters long; the limit is %d", len(name), backupNameMax)
	case !backupNameChars.MatchString(name):
		return entity.Errorf(entity.KindInvalid, "backup name %q may hold only letters, digits, '.', '_' and '-'"+hint, name)
	case companionSuffix(name) != "":
		return entity.Errorf(entity.KindInvalid, "backup name %q ends in %q, the ending of a database's %s"+hint, name, companionSuffix(name), companionFiles)
	}
	return nil
}

// companionFiles names what companionSuffix recognises, for messages.
const companionFiles = "write-ahead log, shared-memory index, rollback journal or lock file"

// companionSuffix is the ending that marks name as a file that belongs
// beside a database rather than a database of its own ("" for none).
func companionSuffix(name string) string {
	for _, suffix := range []string{"-wal", "-shm", "-journal", ".lock"} {
		if strings.HasSuffix(name, suffix) {
			return suffix
		}
	}
	return ""
}

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
		if err := validBackupName(req.Name); err != nil {
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
		if name, err = freeBackupName(dir, start); err != nil {
			s.metrics.backups.WithLabelValues(mode, backupError).Inc()
			return err
		}
	} else if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
		return backupExists(name)
	}
	snap, err := s.store.Backup(r.Context(), filepath.Join(dir, name))
	if err != nil {
		if entity.IsKind(err, entity.KindConflict) {
			// Another process took the name meanwhile; the store's message
			// holds the server's path, which stays in the server.
			return backupExists(name)
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
	pruned := s.pruneBackups(r, dir)
	return s.writeJSON(w, r, http.StatusCreated, entity.BackupAnswer{Name: name, Bytes: snap.Bytes, SHA256: snap.SHA256,
		Change: snap.Change, TookMS: took.Milliseconds(), Created: start.Truncate(time.Second), Pruned: pruned})
}

// autoBackupName matches the names defaultBackupName gives: the time, and
// the number of a second backup within the same second.
var autoBackupName = regexp.MustCompile(`^clusto-(\d{8}T\d{6}Z)(?:-(\d+))?\.db$`)

// pruneBackups removes the automatically named backups in dir beyond the
// newest Options.BackupKeep (by the time in their names, which a copy or
// a touch does not change) and returns their names. The backup has
// succeeded whatever happens here, so a file that cannot be removed is
// logged, not returned as an error.
func (s *Server) pruneBackups(r *http.Request, dir string) []string {
	if s.opts.BackupKeep <= 0 {
		return nil
	}
	files, err := s.backups()
	if err != nil {
		s.log.Warn("list backups to prune", "request_id", requestIDOf(r), "err", err)
		return nil
	}
	type auto struct {
		name, at string
		n        int
	}
	var autos []auto
	for _, f := range files {
		m := autoBackupName.FindStringSubmatch(f.Name)
		if m == nil {
			continue
		}
		n := 1
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		autos = append(autos, auto{f.Name, m[1], n})
	}
	// Newest first: the name's time, then the number within its second.
	sort.Slice(autos, func(i, j int) bool {
		if autos[i].at != autos[j].at {
			return autos[i].at > autos[j].at
		}
		return autos[i].n > autos[j].n
	})
	var pruned []string
	for _, a := range autos[min(s.opts.BackupKeep, len(autos)):] {
		if err := os.Remove(filepath.Join(dir, a.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("prune a backup", "request_id", requestIDOf(r), "name", a.name, "err", err)
			continue
		}
		pruned = append(pruned, a.name)
	}
	if len(pruned) > 0 {
		s.log.Info("backups pruned", "request_id", requestIDOf(r), "keep", s.opts.BackupKeep, "names", pruned)
	}
	return pruned
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// backupDirView is what telling backups from other files in the backup
// directory needs to know, read once per listing: whether the directory
// is the live database's own, and the live database's files (the
// database, its -wal, -shm and -journal, and the serve lock), to be
// recognised even under another name (a hard link).
type backupDirView struct {
	dir      string
	dbBase   string
	sameDir  bool
	liveInfo []fs.FileInfo
}

func (s *Server) backupDirView() backupDirView {
	db := s.store.Path()
	v := backupDirView{dir: s.opts.BackupDir, dbBase: filepath.Base(db)}
	if a, err := os.Stat(v.dir); err == nil {
		if b, err := os.Stat(filepath.Dir(db)); err == nil {
			v.sameDir = os.SameFile(a, b)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal", ".lock"} {
		if fi, err := os.Stat(db + suffix); err == nil {
			v.liveInfo = append(v.liveInfo, fi)
		}
	}
	return v
}

// notABackup says why the file name in the backup directory, described
// by fi (from Lstat), is not a finished backup; nil when it is one. Only
// finished backups are listed, pruned or deleted: a regular file with a
// backup's name that is an SQLite database and none of the live
// database's files. Temporary files of backups in progress are hidden
// names, and a database's companion files have endings a backup's name
// may not have.
func (v backupDirView) notABackup(name string, fi fs.FileInfo) error {
	if err := validBackupName(name); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return entity.Errorf(entity.KindInvalid, "%q in the backup directory is not a backup file; it is left alone", name)
	}
	live := v.sameDir && strings.HasPrefix(name, v.dbBase)
	for _, l := range v.liveInfo {
		live = live || os.SameFile(fi, l)
	}
	if live {
		return entity.Errorf(entity.KindInvalid, "%q in the backup directory is the live database or one of its files, not a backup; it is left alone", name)
	}
	f, err := os.Open(filepath.Join(v.dir, name))
	if err != nil {
		return entity.Errorf(entity.KindInvalid, "%q in the backup directory cannot be read; it is left alone", name)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteHeader {
		return entity.Errorf(entity.KindInvalid, "%q in the backup directory is not an SQLite database, so not a backup; it is left alone", name)
	}
	return nil
}

// backups lists the finished backups in the backup directory (see
// notABackup), newest first. A directory not made yet holds none.
func (s *Server) backups() ([]entity.BackupFile, error) {
	v := s.backupDirView()
	ents, err := os.ReadDir(v.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []entity.BackupFile
	for _, d := range ents {
		fi, err := d.Info()
		if err != nil {
			continue // removed since the directory was read
		}
		if v.notABackup(d.Name(), fi) != nil {
			continue
		}
		out = append(out, entity.BackupFile{Name: d.Name(), Bytes: fi.Size(), Modified: fi.ModTime().UTC().Truncate(time.Second)})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Modified.Equal(out[j].Modified) {
			return out[i].Modified.After(out[j].Modified)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// GET /admin/backups: the backups in the backup directory, newest first.
func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) error {
	files, err := s.backups()
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
	if err := validBackupName(name); err != nil {
		return err
	}
	path := filepath.Join(s.opts.BackupDir, name)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return backupNotFound(name)
	} else if err != nil {
		return entity.Internal("read the backup directory", err)
	}
	if err := s.backupDirView().notABackup(name, fi); err != nil {
		return err
	}
	if err := os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		return backupNotFound(name)
	} else if err != nil {
		return entity.Internal("remove a backup", err)
	}
	s.log.Info("backup deleted", "request_id", requestIDOf(r), "actor", actorOf(r), "name", name, "bytes", fi.Size())
	return s.writeJSON(w, r, http.StatusOK, entity.BackupFile{Name: name, Bytes: fi.Size(), Modified: fi.ModTime().UTC().Truncate(time.Second)})
}

// downloadBackup makes the snapshot in a hidden temporary file in dir,
// releases the one-backup slot, and streams the file as the answer. The
// file is unlinked as soon as it is open, so that nothing is left behind
// whether the client reads it all, goes away, or the server dies.
func (s *Server) downloadBackup(w http.ResponseWriter, r *http.Request, dir, name string, start time.Time, release func()) error {
	mode := backupModeDownload
	if name == "" {
		name = defaultBackupName(start, 1)
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

// defaultBackupName is clusto-<UTC time>.db, with -n before .db for the
// nth backup made within the same second.
func defaultBackupName(t time.Time, n int) string {
	base := "clusto-" + t.UTC().Format("20060102T150405") + "Z"
	if n > 1 {
		base += "-" + strconv.Itoa(n)
	}
	return base + ".db"
}

// freeBackupName is the first default name for t not taken in dir.
// Backups run one at a time, so nothing else in this server can take it
// before the snapshot does.
func freeBackupName(dir string, t time.Time) (string, error) {
	for n := 1; n <= 1000; n++ {
		name := defaultBackupName(t, n)
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", entity.Internal("look for a free backup name", err)
		}
	}
	return "", entity.Errorf(entity.KindConflict, "1000 backups named for %s exist already; give a name", t.Format(time.RFC3339))
}

// newestBackup is the modification time of the newest backup in the
// backup directory (0 when there is none), so that the last-success
// metric survives a restart instead of reading as "never" until the next
// backup.
func (s *Server) newestBackup() time.Time {
	files, err := s.backups()
	if err != nil || len(files) == 0 {
		return time.Time{}
	}
	return files[0].Modified
}

// ResolveBackupDir is the backup directory a server over the database at
// dbPath uses given dir (empty: "backups" beside the database), as an
// absolute path. It refuses a directory that holds the database, whatever
// relative path or symbolic link names it: the backups would share it
// with the live database and its -wal, -shm and lock files, and one
// mistaken delete would take the inventory. clustod calls it before it
// touches anything, so that such a setting stops it with nothing done.
func ResolveBackupDir(dbPath, dir string) (string, error) {
	db, err := filepath.Abs(dbPath)
	if err != nil {
		return "", fmt.Errorf("database path %s: %w", dbPath, err)
	}
	if dir == "" {
		return filepath.Join(filepath.Dir(db), "backups"), nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("backup directory %s: %w", dir, err)
	}
	dbDir := filepath.Dir(db)
	same := resolveExisting(abs) == resolveExisting(dbDir)
	if a, err := os.Stat(abs); err == nil {
		if b, err := os.Stat(dbDir); err == nil {
			same = same || os.SameFile(a, b)
		}
	}
	if same {
		return "", fmt.Errorf("the backup directory %s is the directory of the database %s; backups there would sit beside the live database and its -wal, -shm and lock files, "+
			"and deleting one could delete the inventory: choose a directory of their own (the default is %s)", dir, dbPath, filepath.Join(dbDir, "backups"))
	}
	return abs, nil
}

// resolveExisting is the absolute path p with the symbolic links of its
// longest existing ancestor resolved; the rest, not made yet, is kept as
// written.
func resolveExisting(p string) string {
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func backupNotFound(name string) error {
	return entity.Errorf(entity.KindNotFound, "no backup named %q in the backup directory", name).WithCode(reasonBackupNotFound)
}

func backupExists(name string) error {
	return entity.Errorf(entity.KindConflict, "a backup named %q exists already in the backup directory; choose another name", name).WithCode(reasonBackupExists)
}

// internalOnly makes err an internal error whatever its kind, so that its
// message (which may name the server's files) reaches only the log.
func internalOnly(op string, err error) error {
	return &entity.Error{Kind: entity.KindInternal, Message: op, Err: err}
}
