package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/clusto/clusto/entity"
)

// The backup answers, as package entity defines them.
type (
	// Backup is a snapshot the server wrote into its backup directory
	// (POST /admin/backup).
	Backup = entity.BackupAnswer
	// BackupFile is a backup in the server's backup directory.
	BackupFile = entity.BackupFile
	// BackupList is the answer of GET /admin/backups.
	BackupList = entity.BackupList
	// BackupRequest is the optional body of POST /admin/backup.
	BackupRequest = entity.BackupRequest
)

// Backups lists the backups in the server's backup directory, newest
// first (admin).
func (c *Client) Backups(ctx context.Context) (*BackupList, error) {
	var out BackupList
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/backups"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteBackup removes a backup from the server's backup directory
// (admin) and describes the file removed. A name not there is a
// CodeNotFound *Error.
func (c *Client) DeleteBackup(ctx context.Context, name string) (*BackupFile, error) {
	var out BackupFile
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/admin/backups/" + pathEscape(name)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Backup asks the server for a consistent snapshot of its database, kept
// in its backup directory under name ("" for clusto-<UTC time>.db) (admin).
// A name already taken, or another backup running, is a CodeConflict
// *Error (Reason "backup_exists" or "backup_running"). It is never sent
// twice: a repeat would make a second backup. A large inventory may take
// longer than the client's default timeout of 30 seconds; see WithTimeout.
func (c *Client) Backup(ctx context.Context, name string) (*Backup, error) {
	var out Backup
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/admin/backup", body: BackupRequest{Name: name}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DownloadedBackup describes a snapshot DownloadBackup received.
type DownloadedBackup struct {
	// Name is the file name the server suggests (Content-Disposition).
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Change is the newest change the snapshot holds (X-Clusto-Change).
	Change int64 `json:"change"`
}

// DownloadBackup asks the server for a consistent snapshot of its
// database and copies it into w as it arrives (admin); the server keeps
// no copy. It fails unless the bytes written add up to the length and
// SHA-256 the server announced, in which case w holds a partial file that
// the caller must discard. name only names the download ("" for
// clusto-<UTC time>.db). The client's timeout (WithTimeout) bounds the
// whole transfer.
func (c *Client) DownloadBackup(ctx context.Context, name string, w io.Writer) (*DownloadedBackup, error) {
	req := request{method: http.MethodPost, path: "/admin/backup", query: url.Values{"download": {"true"}}, body: BackupRequest{Name: name}}
	resp, err := c.stream(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	d := &DownloadedBackup{Bytes: resp.ContentLength, SHA256: resp.Header.Get("X-Clusto-Sha256")}
	d.Change, _ = strconv.ParseInt(resp.Header.Get("X-Clusto-Change"), 10, 64)
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		d.Name = params["filename"]
	}
	if d.SHA256 == "" || d.Bytes < 0 {
		return nil, fmt.Errorf("POST %s: the answer lacks the length or checksum of a clusto backup", req.path)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.transportError(ctx, req, err)
		}
		return nil, fmt.Errorf("the download stopped after %d of %d bytes: %w", n, d.Bytes, err)
	}
	if n != d.Bytes {
		return nil, fmt.Errorf("the download has %d bytes; the server announced %d", n, d.Bytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.SHA256 {
		return nil, fmt.Errorf("the download's SHA-256 is %s; the server announced %s", got, d.SHA256)
	}
	return d, nil
}
