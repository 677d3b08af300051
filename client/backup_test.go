package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/client"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func TestBackup(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	c := newClient(t, srv.ts.URL)
	demo(t, c)
	latest, err := srv.store.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}

	b, err := c.Backup(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^clusto-\d{8}T\d{6}Z\.db$`).MatchString(b.Name) || b.Change != latest || b.Bytes == 0 || len(b.SHA256) != 64 || b.Created.IsZero() {
		t.Errorf("backup %+v (latest change %d)", b, latest)
	}
	if _, err := c.Backup(ctx, "nightly.db"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Backup(ctx, "nightly.db")
	if e := apiErr(t, err); e.Code != client.CodeConflict || e.Reason != "backup_exists" {
		t.Errorf("a name taken: %+v", e)
	}
	_, err = c.Backup(ctx, "../nightly.db")
	if e := apiErr(t, err); e.Code != client.CodeInvalid || !strings.Contains(e.Message, "directory separator") {
		t.Errorf("a path for a name: %+v", e)
	}

	var buf bytes.Buffer
	d, err := c.DownloadBackup(ctx, "copy.db", &buf)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if diff := cmp.Diff(&client.DownloadedBackup{Name: "copy.db", Bytes: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:]), Change: latest}, d); diff != "" {
		t.Errorf("download (-want +got):\n%s", diff)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	os.WriteFile(path, buf.Bytes(), 0o600)
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if p, err := st.Check(ctx); err != nil || len(p) > 0 {
		t.Errorf("the download does not check: %v %v", p, err)
	}
	if _, err := st.Get(ctx, "s0001"); err != nil {
		t.Errorf("the download lacks the demo: %v", err)
	}

	list, err := c.Backups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range list.Backups {
		names = append(names, f.Name)
		if f.Bytes == 0 || f.Modified.IsZero() {
			t.Errorf("listed %+v", f)
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{b.Name, "nightly.db"}, names); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}
	gone, err := c.DeleteBackup(ctx, "nightly.db")
	if err != nil || gone.Name != "nightly.db" || gone.Bytes == 0 {
		t.Fatalf("delete: %+v %v", gone, err)
	}
	if _, err := c.DeleteBackup(ctx, "nightly.db"); apiErr(t, err).Code != client.CodeNotFound {
		t.Errorf("deleting it again: %v", err)
	}
	if _, err := c.DeleteBackup(ctx, "../inventory.db"); apiErr(t, err).Code != client.CodeInvalid {
		t.Errorf("deleting a path: %v", err)
	}

	secret, _, err := srv.store.CreateToken(ctx, entity.Caller{Actor: "clustod/test"}, "robot", entity.RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	wc := newClient(t, srv.ts.URL, client.WithToken(secret))
	if _, err := wc.Backup(ctx, ""); apiErr(t, err).Code != client.CodeForbidden {
		t.Errorf("a write token: %v", err)
	}
	if _, err := wc.DownloadBackup(ctx, "", &buf); apiErr(t, err).Code != client.CodeForbidden {
		t.Errorf("a write token downloading: %v", err)
	}
	if _, err := wc.Backups(ctx); apiErr(t, err).Code != client.CodeForbidden {
		t.Errorf("a write token listing: %v", err)
	}
	if _, err := wc.DeleteBackup(ctx, b.Name); apiErr(t, err).Code != client.CodeForbidden {
		t.Errorf("a write token deleting: %v", err)
	}
}

// corrupt changes one byte of every answer body.
type corrupt struct{ http.ResponseWriter }

func (c corrupt) Write(b []byte) (int, error) {
	if len(b) > 0 {
		b = append([]byte{b[0] ^ 0xff}, b[1:]...)
	}
	return c.ResponseWriter.Write(b)
}

// truncate sends half of every answer body and hangs up.
type truncate struct {
	http.ResponseWriter
	sent int
}

func (c *truncate) Write(b []byte) (int, error) {
	if c.sent > 0 {
		panic(http.ErrAbortHandler)
	}
	c.sent = len(b)
	return c.ResponseWriter.Write(b[:len(b)/2])
}

// A download that does not add up to what the server announced is an
// error, never a silently broken backup.
func TestDownloadBackupIsChecked(t *testing.T) {
	for _, c := range []struct {
		name string
		wrap func(http.ResponseWriter) http.ResponseWriter
		want string
	}{
		{"corrupt", func(w http.ResponseWriter) http.ResponseWriter { return corrupt{w} }, "the download's SHA-256 is"},
		{"truncated", func(w http.ResponseWriter) http.ResponseWriter { return &truncate{ResponseWriter: w} }, "the download stopped after"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newServer(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(c.wrap(w), r) })
			})
			var buf bytes.Buffer
			_, err := newClient(t, srv.ts.URL).DownloadBackup(context.Background(), "", &buf)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// A backup is never sent twice: a repeat would make a second one.
func TestBackupIsNotRetried(t *testing.T) {
	f := &flaky{fails: map[string]int{}}
	srv := newServer(t, f.wrap(2))
	c := newClient(t, srv.ts.URL, client.WithRetries(3))
	if _, err := c.Backup(context.Background(), ""); apiErr2(t, err).Status != http.StatusServiceUnavailable {
		t.Errorf("a backup through a 503: %v", err)
	}
	var buf bytes.Buffer
	if _, err := c.DownloadBackup(context.Background(), "", &buf); err == nil {
		t.Error("a download through a 503 succeeded")
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d attempts for two requests", n)
	}
}
