package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clusto/clusto/entity"
)

// The backup catalogue: which files of a backup directory are finished
// backups of the live database, how they are named, listed, pruned and
// deleted. Store.Backup writes them; Restore and CheckFile read them; the
// server's backup endpoints are HTTP over this.

// BackupDir is a directory of backups of one live database.
type BackupDir struct {
	// Path is the directory, absolute (see ResolveBackupDir).
	Path string
	// DB is the live database's path: none of its files, under any name
	// (a hard link), is ever taken for a backup.
	DB string
}

// MaxBackupNameLen bounds a backup's file name, well under any file system's
// limit once the temporary suffixes are added.
const MaxBackupNameLen = 128

// backupNameChars are the characters a backup's name may hold: enough for
// dates and labels, and nothing a shell, a URL or a Content-Disposition
// header would need to quote.
var backupNameChars = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidBackupName refuses any name but a plain file name in the backup
// directory: no directory part, no "..", no leading dot, which is kept
// for temporary files (entity.BackupTempPrefix), and none of the endings
// SQLite and clustod give a database's companion files (-wal, -shm,
// -journal, .lock), so that no backup can be mistaken for one, nor one
// for a backup.
func ValidBackupName(name string) error {
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
	case len(name) > MaxBackupNameLen:
		return entity.Errorf(entity.KindInvalid, "backup name is %d characters long; the limit is %d", len(name), MaxBackupNameLen)
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

// DefaultBackupName is clusto-<UTC time>.db, with -n before .db for the
// nth backup made within the same second.
func DefaultBackupName(t time.Time, n int) string {
	base := "clusto-" + t.UTC().Format("20060102T150405") + "Z"
	if n > 1 {
		base += "-" + strconv.Itoa(n)
	}
	return base + ".db"
}

// autoBackupName matches the names DefaultBackupName gives: the time, and
// the number of a second backup within the same second.
var autoBackupName = regexp.MustCompile(`^clusto-(\d{8}T\d{6}Z)(?:-(\d+))?\.db$`)

// FreeName is the first default name for t not taken in the directory.
// The server makes one backup at a time, so nothing else can take it
// before the backup does.
func (d BackupDir) FreeName(t time.Time) (string, error) {
	for n := 1; n <= 1000; n++ {
		name := DefaultBackupName(t, n)
		if _, err := os.Lstat(filepath.Join(d.Path, name)); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", entity.Internal("look for a free backup name", err)
		}
	}
	return "", entity.Errorf(entity.KindConflict, "1000 backups named for %s exist already; give a name", t.Format(time.RFC3339))
}

// Taken refuses a name that a file in the directory has already
// (conflict, reason backup_exists).
func (d BackupDir) Taken(name string) error {
	if _, err := os.Lstat(filepath.Join(d.Path, name)); err == nil {
		return BackupExists(name)
	}
	return nil
}

// BackupExists is the error of a backup name already taken.
func BackupExists(name string) error {
	return entity.Errorf(entity.KindConflict, "a backup named %q exists already in the backup directory; choose another name", name).WithCode(entity.ReasonBackupExists)
}

func backupNotFound(name string) error {
	return entity.Errorf(entity.KindNotFound, "no backup named %q in the backup directory", name).WithCode(entity.ReasonBackupNotFound)
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// dirView is what telling backups from other files in the directory
// needs to know, read once per listing: whether the directory is the live
// database's own, and the live database's files (the database, its -wal,
// -shm and -journal, and the serve lock), to be recognised even under
// another name (a hard link).
type dirView struct {
	dir      string
	dbBase   string
	sameDir  bool
	liveInfo []fs.FileInfo
}

func (d BackupDir) view() dirView {
	v := dirView{dir: d.Path, dbBase: filepath.Base(d.DB)}
	if a, err := os.Stat(v.dir); err == nil {
		if b, err := os.Stat(filepath.Dir(d.DB)); err == nil {
			v.sameDir = os.SameFile(a, b)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal", ".lock"} {
		if fi, err := os.Stat(d.DB + suffix); err == nil {
			v.liveInfo = append(v.liveInfo, fi)
		}
	}
	return v
}

// notABackup says why the file name in the directory, described by fi
// (from Lstat), is not a finished backup; nil when it is one. Only
// finished backups are listed, pruned or deleted: a regular file with a
// backup's name that is an SQLite database and none of the live
// database's files. Temporary files of backups in progress are hidden
// names, and a database's companion files have endings a backup's name
// may not have.
func (v dirView) notABackup(name string, fi fs.FileInfo) error {
	if err := ValidBackupName(name); err != nil {
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

// List lists the finished backups in the directory (see notABackup),
// newest first. A directory not made yet holds none.
func (d BackupDir) List() ([]entity.BackupFile, error) {
	v := d.view()
	ents, err := os.ReadDir(v.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []entity.BackupFile
	for _, de := range ents {
		fi, err := de.Info()
		if err != nil {
			continue // removed since the directory was read
		}
		if v.notABackup(de.Name(), fi) != nil {
			continue
		}
		out = append(out, entity.BackupFile{Name: de.Name(), Bytes: fi.Size(), Modified: fi.ModTime().UTC().Truncate(time.Second)})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Modified.Equal(out[j].Modified) {
			return out[i].Modified.After(out[j].Modified)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// Newest is the modification time of the newest backup (zero when there
// is none).
func (d BackupDir) Newest() time.Time {
	files, err := d.List()
	if err != nil || len(files) == 0 {
		return time.Time{}
	}
	return files[0].Modified
}

// Delete removes one finished backup and describes the file removed.
func (d BackupDir) Delete(name string) (entity.BackupFile, error) {
	if err := ValidBackupName(name); err != nil {
		return entity.BackupFile{}, err
	}
	path := filepath.Join(d.Path, name)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return entity.BackupFile{}, backupNotFound(name)
	} else if err != nil {
		return entity.BackupFile{}, entity.Internal("read the backup directory", err)
	}
	if err := d.view().notABackup(name, fi); err != nil {
		return entity.BackupFile{}, err
	}
	if err := os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		return entity.BackupFile{}, backupNotFound(name)
	} else if err != nil {
		return entity.BackupFile{}, entity.Internal("remove a backup", err)
	}
	return entity.BackupFile{Name: name, Bytes: fi.Size(), Modified: fi.ModTime().UTC().Truncate(time.Second)}, nil
}

// Prune removes the automatically named backups beyond the newest keep
// (by the time in their names, which a copy or a touch does not change)
// and returns their names; keep 0 keeps every backup. A file it could not
// remove is left, and its error returned with the others (the backup that
// prompted the prune has succeeded whatever happens here).
func (d BackupDir) Prune(keep int) (pruned []string, err error) {
	if keep <= 0 {
		return nil, nil
	}
	files, err := d.List()
	if err != nil {
		return nil, fmt.Errorf("list backups to prune: %w", err)
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
	var errs []error
	for _, a := range autos[min(keep, len(autos)):] {
		if err := os.Remove(filepath.Join(d.Path, a.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("prune backup %s: %w", a.name, err))
			continue
		}
		pruned = append(pruned, a.name)
	}
	return pruned, errors.Join(errs...)
}

// ResolveBackupDir is the backup directory of the database at dbPath
// given dir (empty: "backups" beside the database), as an absolute path.
// It refuses a directory that holds the database, whatever relative path
// or symbolic link names it: the backups would share it with the live
// database and its -wal, -shm and lock files, and one mistaken delete
// would take the inventory. clustod calls it before it touches anything,
// so that such a setting stops it with nothing done.
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
