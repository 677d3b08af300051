package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clusto/clusto/client"
)

// backupTimeout is how long backup waits when --timeout is not given: a
// snapshot of a large inventory, let alone its download, takes longer than
// the 30 seconds that suit every other command.
const backupTimeout = time.Hour

func (a *app) backupCmd() *cobra.Command {
	var download, remove string
	var list bool
	cmd := &cobra.Command{
		Use:   "backup [NAME | --download FILE | --list | --delete NAME]",
		Short: "Have the server take a consistent snapshot of its database (admin)",
		Long: `Have clustod take a consistent snapshot of the live database while it keeps
serving writes (POST /api/v1/admin/backup; an admin token).

Without --download the snapshot stays on the server, in its backup
directory (clustod serve --backup-dir), as NAME or clusto-<UTC time>.db.
NAME is a plain file name: letters, digits, '.', '_' and '-'. A NAME already
taken is exit 4.

With --download FILE the snapshot comes to this machine instead and the
server keeps no copy. FILE must not exist: it is written under a temporary
name beside it and renamed only once its length and SHA-256 match what the
server announced, so an interrupted download leaves no FILE behind.

The line printed names the newest change the snapshot holds, and any older
automatically named backups the server removed to keep its newest N
(clustod serve --backup-keep). One backup runs at a time; asking while
another runs is exit 4. Unless --timeout is given, backup waits up to an
hour.

--list shows the backups in the server's backup directory, newest first;
--delete NAME removes one (a NAME not there is exit 3).`,
		Example: `  clusto backup
  clusto backup nightly.db
  clusto backup --download clusto-$(date +%F).db
  clusto backup --list
  clusto backup --delete nightly.db`,
		Args:        args(0, 1),
		Annotations: map[string]string{defaultTimeoutAnnotation: backupTimeout.String()},
		RunE: func(cmd *cobra.Command, args []string) error {
			given := 0
			for _, on := range []bool{len(args) > 0, download != "", list, remove != ""} {
				if on {
					given++
				}
			}
			if given > 1 {
				return &usageError{msg: "give one of NAME (kept on the server), --download FILE (kept here), --list and --delete NAME", cmd: cmd.CommandPath()}
			}
			switch {
			case download != "":
				return a.downloadBackup(download)
			case list:
				return a.listBackups()
			case remove != "":
				f, err := a.cli.DeleteBackup(a.ctx, remove)
				if err != nil {
					return err
				}
				return a.done(f.Name, f, "backup %s removed from the server's backup directory (%d bytes, modified %s)",
					f.Name, f.Bytes, f.Modified.UTC().Format(time.RFC3339))
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			b, err := a.cli.Backup(a.ctx, name)
			if err != nil {
				return err
			}
			format := "backup %s written to the server's backup directory: change %d, %d bytes, sha256 %s, took %d ms"
			if len(b.Pruned) > 0 {
				format += fmt.Sprintf("\nremoved %d older backups to keep the newest (clustod serve --backup-keep): %s",
					len(b.Pruned), strings.Join(b.Pruned, ", "))
			}
			return a.done(b.Name, b, format, b.Name, b.Change, b.Bytes, b.SHA256, b.TookMS)
		},
	}
	cmd.Flags().StringVar(&download, "download", "", "receive the snapshot into `FILE` (which must not exist) instead of keeping it on the server")
	cmd.Flags().BoolVar(&list, "list", false, "list the backups in the server's backup directory, newest first")
	cmd.Flags().StringVar(&remove, "delete", "", "remove the backup `NAME` from the server's backup directory")
	return cmd
}

// listBackups prints the server's backups: a table, the names (-o names)
// or the answer (-o json).
func (a *app) listBackups() error {
	l, err := a.cli.Backups(a.ctx)
	if err != nil {
		return err
	}
	switch a.output {
	case "json":
		return a.printJSON(l)
	case "names":
		for _, f := range l.Backups {
			a.println(f.Name)
		}
		return nil
	}
	t := newTable("NAME", "BYTES", "MODIFIED").alignRight(1)
	for _, f := range l.Backups {
		t.add(f.Name, strconv.FormatInt(f.Bytes, 10), f.Modified.UTC().Format(time.RFC3339))
	}
	a.printTable(t)
	return nil
}

// downloadedFile is -o json of backup --download.
type downloadedFile struct {
	File string `json:"file"`
	*client.DownloadedBackup
}

// downloadBackup receives a snapshot into file, through a temporary file
// beside it that takes the name only when the download is whole.
func (a *app) downloadBackup(file string) error {
	if _, err := os.Lstat(file); err == nil {
		return fmt.Errorf("%s exists; give a new file (a backup never replaces one)", file)
	}
	dir, base := filepath.Split(file)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".part-*")
	if err != nil {
		return fmt.Errorf("download a backup: %w", unwrapPath(err))
	}
	// After the link below this removes only the temporary name; before
	// it, the partial download.
	defer os.Remove(tmp.Name())
	d, err := a.cli.DownloadBackup(a.ctx, "", tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := linkNew(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s appeared during the download; the backup was not kept", file)
		}
		return fmt.Errorf("download a backup: %w", unwrapPath(err))
	}
	// The new name survives a crash only once its directory is synced.
	if df, err := os.Open(dir); err == nil {
		df.Sync()
		df.Close()
	}
	return a.done(file, downloadedFile{File: file, DownloadedBackup: d},
		"backup of change %d downloaded to %s: %d bytes, sha256 %s", d.Change, file, d.Bytes, d.SHA256)
}

// linkNew gives the file at tmp the name path, failing with fs.ErrExist
// rather than replacing a file there: a hard link never replaces; where
// hard links are not supported, a check and a rename.
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

// unwrapPath drops the operation and path an *os.PathError or
// *os.LinkError repeats, for a one-line message.
func unwrapPath(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	case errors.As(err, &le):
		return fmt.Errorf("%s: %w", le.New, le.Err)
	}
	return err
}
