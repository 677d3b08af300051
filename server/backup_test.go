package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// backupFiles lists the backup directory; hidden (temporary) files too.
func (e *env) backupFiles() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.srv.opts.BackupDir)
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	names := []string{}
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names
}

// openCopy opens a copy of a backup file, so that opening it (which
// migrates and adds WAL files) leaves the backup directory as it was, and
// checks it.
func openCopy(t *testing.T, raw []byte) *store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	problems, err := st.Check(context.Background())
	if err != nil || len(problems) > 0 {
		t.Fatalf("the backup does not pass its check: %v %+v", err, problems)
	}
	return st
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var defaultBackupNamePattern = regexp.MustCompile(`^clusto-\d{8}T\d{6}Z(-\d+)?\.db$`)

// A backup taken while clients keep writing over HTTP is a sound database
// holding exactly the changes up to the one it reports: every entity
// created by an earlier or equal change, none created later.
func TestBackupWhileWriting(t *testing.T) {
	e := newEnv(t)
	e.mk("r1", "rack")
	const writers = 4
	var (
		mu      sync.Mutex
		created = map[string]int64{} // entity -> the change that created it
		failed  []string
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	// started gets a signal after each write, when there is room.
	started := make(chan struct{}, writers*10)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", g, i)
				r := e.doQuiet("POST", api+"/entities", map[string]any{"name": name, "driver": "server"})
				change, err := strconv.ParseInt(r.Header.Get("X-Clusto-Change"), 10, 64)
				mu.Lock()
				if r.Status != http.StatusCreated || err != nil {
					failed = append(failed, fmt.Sprintf("%s: %d %s", name, r.Status, r.Body))
				} else {
					created[name] = change
				}
				mu.Unlock()
				select {
				case started <- struct{}{}:
				default:
				}
			}
		}(g)
	}
	for i := 0; i < writers*5; i++ {
		<-started
	}
	r := e.do("POST", api+"/admin/backup", nil).want(t, http.StatusCreated)
	var got entity.BackupAnswer
	r.decode(t, &got)
	// Writes go on after the snapshot: wait for a few of them, then stop.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		after := 0
		mu.Lock()
		for _, change := range created {
			if change > got.Change {
				after++
			}
		}
		mu.Unlock()
		if after >= writers*2 || time.Now().After(deadline) {
			break
		}
	}
	close(stop)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("writes failed during the backup: %v", failed)
	}

	if !defaultBackupNamePattern.MatchString(got.Name) {
		t.Errorf("default name %q", got.Name)
	}
	if strings.Contains(string(r.Body), e.srv.opts.BackupDir) {
		t.Errorf("the answer shows the server's path: %s", r.Body)
	}
	raw, err := os.ReadFile(filepath.Join(e.srv.opts.BackupDir, got.Name))
	if err != nil {
		t.Fatal(err)
	}
	if got.Bytes != int64(len(raw)) || got.SHA256 != sha(raw) || got.TookMS < 0 || time.Since(got.Created) > time.Minute {
		t.Errorf("answer %+v; the file has %d bytes, sha256 %s", got, len(raw), sha(raw))
	}
	if diff := cmp.Diff([]string{got.Name}, e.backupFiles()); diff != "" {
		t.Errorf("backup directory (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(e.srv.opts.BackupDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("backup directory mode %v (%v), want 0700", fi.Mode(), err)
	}

	b := openCopy(t, raw)
	ctx := context.Background()
	if latest, err := b.LatestChange(ctx); err != nil || latest != got.Change {
		t.Fatalf("the answer says change %d; the file's newest is %d (%v)", got.Change, latest, err)
	}
	wantIn, wantOut := []string{}, []string{}
	gotIn, gotOut := []string{}, []string{}
	for name, change := range created {
		ok, err := b.Exists(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if change <= got.Change {
			wantIn = append(wantIn, name)
			if ok {
				gotIn = append(gotIn, name)
			}
		} else {
			wantOut = append(wantOut, name)
			if !ok {
				gotOut = append(gotOut, name)
			}
		}
	}
	if len(wantIn) == 0 || len(wantOut) == 0 {
		t.Fatalf("the writers did not write both before (%d) and after (%d) the snapshot", len(wantIn), len(wantOut))
	}
	if len(gotIn) != len(wantIn) || len(gotOut) != len(wantOut) {
		t.Errorf("snapshot at change %d: holds %d of the %d entities created up to it, and %d of the %d created after",
			got.Change, len(gotIn), len(wantIn), len(wantOut)-len(gotOut), len(wantOut))
	}
}

func TestBackupNames(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server")
	for _, c := range []struct {
		name, body, message string
	}{
		{"slash", `{"name":"a/b.db"}`, "directory separator"},
		{"absolute", `{"name":"/etc/passwd"}`, "directory separator"},
		{"backslash", `{"name":"a\\b.db"}`, "directory separator"},
		{"parent", `{"name":".."}`, `must not contain ".."`},
		{"dots inside", `{"name":"a..db"}`, `must not contain ".."`},
		{"hidden", `{"name":".nightly.db"}`, "must not start with '.'"},
		{"temporary", `{"name":"` + entity.BackupTempPrefix + `x"}`, "must not start with '.'"},
		{"dash", `{"name":"-rf"}`, "must not start with '-'"},
		{"space", `{"name":"night ly.db"}`, "may hold only letters"},
		{"nul", `{"name":"a\u0000b"}`, "may hold only letters"},
		{"unicode", `{"name":"sauvegarde-été.db"}`, "may hold only letters"},
		{"too long", `{"name":"` + strings.Repeat("a", store.MaxBackupNameLen+1) + `"}`, "the limit is 128"},
		{"a log's name", `{"name":"nightly.db-wal"}`, `ends in "-wal", the ending of a database's write-ahead log`},
		{"an index's name", `{"name":"nightly.db-shm"}`, `ends in "-shm"`},
		{"a journal's name", `{"name":"nightly.db-journal"}`, `ends in "-journal"`},
		{"a lock's name", `{"name":"clusto.db.lock"}`, `ends in ".lock"`},
		{"not a string", `{"name":7}`, `field "name" must be a JSON string`},
		{"unknown field", `{"path":"/tmp/x"}`, `unknown field "path"`},
		{"not JSON", `nightly.db`, "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, q := range []string{"", "?download=true"} {
				got := e.do("POST", api+"/admin/backup"+q, c.body).wantErr(t, http.StatusBadRequest, "invalid")
				if !strings.Contains(got.Message, c.message) {
					t.Errorf("%s: message %q lacks %q", q, got.Message, c.message)
				}
			}
		})
	}
	e.do("POST", api+"/admin/backup?download=maybe", nil).wantErr(t, http.StatusBadRequest, "invalid")
	e.do("POST", api+"/admin/backup?dir=/tmp", nil).wantErr(t, http.StatusBadRequest, "invalid")
	if files := e.backupFiles(); len(files) != 0 {
		t.Fatalf("refused requests wrote %v", files)
	}

	// A good name is used as it is; taking it again is a conflict that
	// leaves the first backup alone.
	longest := strings.Repeat("n", store.MaxBackupNameLen-3) + ".db"
	for _, name := range []string{"nightly.db", "clusto_2026-11-22.sqlite3", longest} {
		var got entity.BackupAnswer
		e.do("POST", api+"/admin/backup", map[string]any{"name": name}).want(t, http.StatusCreated).decode(t, &got)
		if got.Name != name {
			t.Errorf("asked for %q, got %q", name, got.Name)
		}
	}
	before, err := os.ReadFile(filepath.Join(e.srv.opts.BackupDir, "nightly.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.mk("s2", "server")
	got := e.do("POST", api+"/admin/backup", `{"name":"nightly.db"}`).wantErr(t, http.StatusConflict, "conflict")
	if got.Reason != "backup_exists" || !strings.Contains(got.Message, `"nightly.db" exists already`) || strings.Contains(got.Message, e.srv.opts.BackupDir) {
		t.Errorf("conflict %+v", got)
	}
	after, _ := os.ReadFile(filepath.Join(e.srv.opts.BackupDir, "nightly.db"))
	if sha(after) != sha(before) {
		t.Error("a refused backup changed the existing file")
	}

	// Default names made in the same second do not collide.
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		var a entity.BackupAnswer
		e.do("POST", api+"/admin/backup", "").want(t, http.StatusCreated).decode(t, &a)
		if !defaultBackupNamePattern.MatchString(a.Name) || seen[a.Name] {
			t.Errorf("default name %q (seen %v)", a.Name, seen)
		}
		seen[a.Name] = true
	}
	if diff := cmp.Diff(6, len(e.backupFiles())); diff != "" {
		t.Errorf("files %v", e.backupFiles())
	}
}

func TestBackupNeedsAdmin(t *testing.T) {
	e := newEnv(t)
	admin := e.newToken("ops", entity.RoleAdmin)
	for _, role := range []entity.Role{entity.RoleRead, entity.RoleWrite} {
		e.token = e.newToken("a-"+string(role), role)
		for _, q := range []string{"", "?download=true"} {
			got := e.do("POST", api+"/admin/backup"+q, nil).wantErr(t, http.StatusForbidden, "forbidden")
			if got.Details["needs"] != "admin" {
				t.Errorf("%s: %+v", role, got)
			}
		}
	}
	e.token = ""
	e.do("POST", api+"/admin/backup", nil).wantErr(t, http.StatusUnauthorized, "unauthorized")
	if _, err := os.Stat(e.srv.opts.BackupDir); !os.IsNotExist(err) {
		t.Errorf("refused requests made the backup directory: %v", err)
	}
	e.token = admin
	e.do("POST", api+"/admin/backup", nil).want(t, http.StatusCreated)
	backups := 0
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "backup written" {
			backups++
			if l["actor"] != "ops" {
				t.Errorf("backup log line %v", l)
			}
		}
	}
	if backups != 1 {
		t.Errorf("%d backup log lines", backups)
	}
}

func TestBackupDownload(t *testing.T) {
	e := newEnv(t)
	e.dc()
	want := e.changeCount()
	res, err := e.ts.Client().Post(e.ts.URL+api+"/admin/backup?download=true", "application/json", strings.NewReader(`{"name":"site.db"}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %v %.200s", res.StatusCode, err, raw)
	}
	gotHeaders := map[string]string{}
	for _, h := range []string{"Content-Type", "Content-Disposition", "Content-Length", "X-Clusto-Change", "X-Clusto-Sha256", "Cache-Control"} {
		gotHeaders[h] = res.Header.Get(h)
	}
	if diff := cmp.Diff(map[string]string{
		"Content-Type":        "application/vnd.sqlite3",
		"Content-Disposition": `attachment; filename="site.db"`,
		"Content-Length":      strconv.Itoa(len(raw)),
		"X-Clusto-Change":     strconv.FormatInt(want, 10),
		"X-Clusto-Sha256":     sha(raw),
		"Cache-Control":       "no-store",
	}, gotHeaders); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	b := openCopy(t, raw)
	if _, err := b.Get(context.Background(), "server1"); err != nil {
		t.Errorf("the download lacks server1: %v", err)
	}
	// Nothing is kept on the server: not under the name, not as a temporary file.
	if files := e.backupFiles(); len(files) != 0 {
		t.Errorf("a download left %v in the backup directory", files)
	}

	// Without a name the file is named by the time.
	r := e.do("POST", api+"/admin/backup?download=1", nil)
	if r.Status != http.StatusOK || !regexp.MustCompile(`^attachment; filename="clusto-\d{8}T\d{6}Z\.db"$`).MatchString(r.Header.Get("Content-Disposition")) {
		t.Errorf("download without a name: %d %q", r.Status, r.Header.Get("Content-Disposition"))
	}
	// An existing name in the backup directory does not matter to a download.
	e.do("POST", api+"/admin/backup", `{"name":"site.db"}`).want(t, http.StatusCreated)
	if r := e.do("POST", api+"/admin/backup?download=true", `{"name":"site.db"}`); r.Status != http.StatusOK {
		t.Errorf("download named like a kept backup: %d", r.Status)
	}
	if diff := cmp.Diff([]string{"site.db"}, e.backupFiles()); diff != "" {
		t.Errorf("backup directory (-want +got):\n%s", diff)
	}
}

// A client that goes away in the middle of a download leaves nothing
// behind, and the next backup runs.
func TestBackupDownloadAbandoned(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server")
	// Ballast, so that the answer cannot fit in the socket buffers and the
	// server is still sending when the client leaves.
	handEdit(t, e.store, "CREATE TABLE ballast(b BLOB)", "INSERT INTO ballast VALUES (zeroblob(8000000))")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.ts.URL+api+"/admin/backup?download=true", nil)
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	io.ReadFull(res.Body, make([]byte, 4096))
	cancel()
	res.Body.Close()
	// The handler notices when its write fails; wait for its log line.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), "backup download not completed") {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the abandoned download:\n%s", e.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if files := e.backupFiles(); len(files) != 0 {
		t.Errorf("an abandoned download left %v", files)
	}
	e.do("POST", api+"/admin/backup", nil).want(t, http.StatusCreated)
	metrics := string(e.do("GET", "/metrics", nil).Body)
	for _, want := range []string{
		`clusto_backups_total{mode="download",result="error"} 1`,
		`clusto_backups_total{mode="file",result="ok"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestOneBackupAtATime(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server")
	// A backup in progress (as if a request were making its snapshot).
	e.srv.backupRunning.Store(&runningBackup{actor: "nightly-cron", started: time.Now().Add(-3 * time.Second)})
	for _, q := range []string{"", "?download=true"} {
		got := e.do("POST", api+"/admin/backup"+q, nil).wantErr(t, http.StatusConflict, "conflict")
		if got.Reason != "backup_running" || !strings.Contains(got.Message, `another backup is running (started by "nightly-cron" 3s ago)`) {
			t.Errorf("%s: %+v", q, got)
		}
	}
	if files := e.backupFiles(); len(files) != 0 {
		t.Errorf("refused backups wrote %v", files)
	}
	e.srv.backupRunning.Store(nil)

	// Real requests at once: each is made or refused as busy, never
	// anything else, and what was made is all there is.
	const n = 6
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			q := ""
			if i%2 == 1 {
				q = "?download=true"
			}
			r := e.doQuiet("POST", api+"/admin/backup"+q, map[string]any{"name": fmt.Sprintf("b%d.db", i)})
			statuses[i] = r.Status
			if r.Status == http.StatusConflict && !strings.Contains(string(r.Body), "another backup is running") {
				t.Errorf("conflict %s", r.Body)
			}
		}(i)
	}
	wg.Wait()
	kept := []string{}
	made := 0
	for i, st := range statuses {
		switch {
		case st == http.StatusCreated && i%2 == 0:
			kept = append(kept, fmt.Sprintf("b%d.db", i))
			made++
		case st == http.StatusOK && i%2 == 1:
			made++
		case st == http.StatusConflict:
		default:
			t.Errorf("request %d: status %d", i, st)
		}
	}
	if made == 0 {
		t.Error("no backup was made")
	}
	if diff := cmp.Diff(kept, e.backupFiles()); diff != "" {
		t.Errorf("backup directory (-want +got):\n%s", diff)
	}
	if e.srv.backupRunning.Load() != nil {
		t.Error("the backup slot is still taken")
	}
}

func TestBackupMetrics(t *testing.T) {
	e := newEnv(t)
	metrics := func() string { return string(e.do("GET", "/metrics", nil).Body) }
	before := metrics()
	for _, want := range []string{
		`clusto_backups_total{mode="file",result="ok"} 0`,
		`clusto_backups_total{mode="file",result="error"} 0`,
		`clusto_backups_total{mode="download",result="busy"} 0`,
		`clusto_backup_last_success_timestamp_seconds 0`,
		`clusto_backup_duration_seconds_count 0`,
	} {
		if !strings.Contains(before, want) {
			t.Errorf("before any backup, metrics lack %s", want)
		}
	}
	e.do("POST", api+"/admin/backup", nil).want(t, http.StatusCreated)
	e.do("POST", api+"/admin/backup?download=true", nil)
	e.srv.backupRunning.Store(&runningBackup{actor: "x", started: time.Now()})
	e.do("POST", api+"/admin/backup", nil).wantErr(t, http.StatusConflict, "conflict")
	e.srv.backupRunning.Store(nil)
	// The backup directory cannot be made: a file is in the way.
	os.RemoveAll(e.srv.opts.BackupDir)
	os.WriteFile(e.srv.opts.BackupDir, nil, 0o600)
	got := e.do("POST", api+"/admin/backup", nil).wantErr(t, http.StatusInternalServerError, "internal")
	if strings.Contains(got.Message, e.srv.opts.BackupDir) || !strings.Contains(got.Message, got.RequestID) {
		t.Errorf("internal error message %q", got.Message)
	}
	after := metrics()
	for _, want := range []string{
		`clusto_backups_total{mode="file",result="ok"} 1`,
		`clusto_backups_total{mode="download",result="ok"} 1`,
		`clusto_backups_total{mode="file",result="busy"} 1`,
		`clusto_backups_total{mode="file",result="error"} 1`,
		`clusto_backup_duration_seconds_count 2`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	m := regexp.MustCompile(`(?m)^clusto_backup_last_success_timestamp_seconds (\S+)`).FindStringSubmatch(after)
	if m == nil {
		t.Fatal("no last-success gauge")
	}
	ts, _ := strconv.ParseFloat(m[1], 64)
	if d := time.Since(time.Unix(int64(ts), 0)); d < 0 || d > time.Minute {
		t.Errorf("last success %s ago", d)
	}
}

func TestBackupDirOption(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "backups")
	e := newEnv(t, func(o *Options) { o.BackupDir = dir })
	e.do("POST", api+"/admin/backup", `{"name":"x.db"}`).want(t, http.StatusCreated)
	if _, err := os.Stat(filepath.Join(dir, "x.db")); err != nil {
		t.Fatal(err)
	}

	// A restarted server reports the newest backup it finds as the last
	// success, ignoring temporary files, rather than "never".
	old := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "x.db"), old, old)
	tmp := filepath.Join(dir, entity.BackupTempPrefix+"leftover")
	os.WriteFile(tmp, nil, 0o600)
	e = newEnv(t, func(o *Options) { o.BackupDir = dir })
	want := fmt.Sprintf("clusto_backup_last_success_timestamp_seconds %g", float64(old.Unix()))
	if body := string(e.do("GET", "/metrics", nil).Body); !strings.Contains(body, want) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestBackupListDeleteAndKeep: GET /admin/backups lists finished backups
// (not the server's temporary files, not directories); DELETE removes one;
// with BackupKeep the older automatically named backups go after each new
// one, and named ones stay.
func TestBackupListDeleteAndKeep(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.BackupKeep = 2 })
	e.mk("s1", "server")
	var list entity.BackupList
	e.do("GET", api+"/admin/backups", nil).want(t, http.StatusOK).decode(t, &list)
	if len(list.Backups) != 0 || list.Keep != 2 {
		t.Fatalf("before any backup: %+v", list)
	}
	e.do("POST", api+"/admin/backup", map[string]any{"name": "keepme.db"}).want(t, http.StatusCreated)
	dir := e.srv.opts.BackupDir
	old := map[string]time.Time{
		"clusto-20200101T000000Z.db":   time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		"clusto-20200101T000000Z-2.db": time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		"clusto-20210101T000000Z.db":   time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
		entity.BackupTempPrefix + "x":  time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	// Backups are SQLite files: the listing reads their header.
	keepme, err := os.ReadFile(filepath.Join(dir, "keepme.db"))
	if err != nil {
		t.Fatal(err)
	}
	for name, at := range old {
		if err := os.WriteFile(filepath.Join(dir, name), keepme, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(filepath.Join(dir, name), at, at)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)

	var got entity.BackupAnswer
	e.do("POST", api+"/admin/backup", nil).want(t, http.StatusCreated).decode(t, &got)
	if diff := cmp.Diff([]string{"clusto-20200101T000000Z-2.db", "clusto-20200101T000000Z.db"}, got.Pruned); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
	wantFiles := []string{entity.BackupTempPrefix + "x", got.Name, "clusto-20210101T000000Z.db", "keepme.db", "sub"}
	slices.Sort(wantFiles)
	if diff := cmp.Diff(wantFiles, e.backupFiles()); diff != "" {
		t.Errorf("backup directory (-want +got):\n%s", diff)
	}

	// The two made now share a second for certain (the listing's order
	// between them is by name), whatever the clock did between them.
	now := time.Now().Truncate(time.Second)
	for _, n := range []string{"keepme.db", got.Name} {
		if err := os.Chtimes(filepath.Join(dir, n), now, now); err != nil {
			t.Fatal(err)
		}
	}
	e.do("GET", api+"/admin/backups", nil).want(t, http.StatusOK).decode(t, &list)
	var names []string
	for _, b := range list.Backups {
		names = append(names, b.Name)
		fi, err := os.Stat(filepath.Join(dir, b.Name))
		if err != nil || fi.Size() != b.Bytes || !fi.ModTime().UTC().Truncate(time.Second).Equal(b.Modified) {
			t.Errorf("listed %+v; the file: %v %v", b, fi, err)
		}
	}
	// Newest first: the two made now (same second: by name), then 2021.
	if diff := cmp.Diff([]string{"keepme.db", got.Name, "clusto-20210101T000000Z.db"}, names); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}

	var deleted entity.BackupFile
	e.do("DELETE", api+"/admin/backups/keepme.db", nil).want(t, http.StatusOK).decode(t, &deleted)
	if deleted.Name != "keepme.db" || deleted.Bytes == 0 {
		t.Errorf("deleted %+v", deleted)
	}
	if _, err := os.Stat(filepath.Join(dir, "keepme.db")); !os.IsNotExist(err) {
		t.Errorf("keepme.db is still there (%v)", err)
	}
	e.do("DELETE", api+"/admin/backups/keepme.db", nil).wantErr(t, http.StatusNotFound, "not_found")
	e.do("DELETE", api+"/admin/backups/"+entity.BackupTempPrefix+"x", nil).wantErr(t, http.StatusBadRequest, "invalid")
	e.do("DELETE", api+"/admin/backups/sub", nil).wantErr(t, http.StatusBadRequest, "invalid")
	e.do("DELETE", api+"/admin/backups/..%2Finventory.db", nil).wantErr(t, http.StatusBadRequest, "invalid")
	if _, err := os.Stat(filepath.Join(dir, "sub")); err != nil {
		t.Errorf("the directory was removed: %v", err)
	}
}

// TestBackupsNeverTheLiveDatabase: a server whose backup directory is the
// database's own (clustod refuses to start so, see ResolveBackupDir; a
// program embedding the server might not) still lists, prunes and
// deletes only finished backups: never the live database, its -wal, -shm,
// journal or lock file, a hard link to it, a backup's temporary file, a
// database's companion under another name, or a file that is not an
// SQLite database. Each refusal leaves the file, and the database keeps
// taking and keeping writes.
func TestBackupsNeverTheLiveDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inventory.db")
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &syncBuffer{}
	srv := New(st, Options{Log: slog.New(slog.NewJSONHandler(logs, nil)), AllowAnonymous: true, BackupDir: dir, BackupKeep: 1})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e := &env{t: t, store: st, srv: srv, ts: ts, logs: logs}
	e.mk("s1", "server")

	var named entity.BackupAnswer
	e.do("POST", api+"/admin/backup", `{"name":"named.db"}`).want(t, http.StatusCreated).decode(t, &named)
	backup, err := os.ReadFile(filepath.Join(dir, "named.db"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"inventory.db.lock":           nil,
		"inventory.db-journal":        nil,    // empty: a journal with content beside the database would be taken for a hot one
		entity.BackupTempPrefix + "1": backup, // a backup being written
		"notes.txt":                   []byte("not a database"),
		"other.db-wal":                backup,
		"copy.db.lock":                backup,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(db, filepath.Join(dir, "linked.db")); err != nil {
		t.Fatal(err)
	}
	// Two automatic backups with BackupKeep 1: pruning removes the older
	// one and nothing else.
	var first, second entity.BackupAnswer
	e.do("POST", api+"/admin/backup", nil).want(t, http.StatusCreated).decode(t, &first)
	e.do("POST", api+"/admin/backup", nil).want(t, http.StatusCreated).decode(t, &second)
	if diff := cmp.Diff([]string{first.Name}, second.Pruned); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}

	var list entity.BackupList
	e.do("GET", api+"/admin/backups", nil).want(t, http.StatusOK).decode(t, &list)
	var listed []string
	for _, b := range list.Backups {
		listed = append(listed, b.Name)
	}
	slices.Sort(listed)
	if diff := cmp.Diff([]string{second.Name, "named.db"}, listed); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}

	for _, c := range []struct{ name, message string }{
		{"inventory.db", "is the live database or one of its files"},
		{"inventory.db-wal", `ends in "-wal"`},
		{"inventory.db-shm", `ends in "-shm"`},
		{"inventory.db-journal", `ends in "-journal"`},
		{"inventory.db.lock", `ends in ".lock"`},
		{"linked.db", "is the live database or one of its files"},
		{entity.BackupTempPrefix + "1", "must not start with '.'"},
		{"notes.txt", "is not an SQLite database"},
		{"other.db-wal", `ends in "-wal"`},
		{"copy.db.lock", `ends in ".lock"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, err := os.Stat(filepath.Join(dir, c.name))
			if err != nil {
				t.Fatal(err)
			}
			got := e.do("DELETE", api+"/admin/backups/"+c.name, nil).wantErr(t, http.StatusBadRequest, "invalid")
			if !strings.Contains(got.Message, c.message) {
				t.Errorf("message %q lacks %q", got.Message, c.message)
			}
			if after, err := os.Stat(filepath.Join(dir, c.name)); err != nil || !os.SameFile(before, after) {
				t.Errorf("%s is gone or replaced: %v", c.name, err)
			}
		})
	}
	e.do("DELETE", api+"/admin/backups/named.db", nil).want(t, http.StatusOK)
	e.mk("s2", "server")
	if problems, err := st.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %+v", err, problems)
	}
	for _, name := range []string{"s1", "s2"} {
		e.get(name)
	}
}
