package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/query"
)

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	e.mk("s1", "server")
	big := `{"key":"note","value":"` + strings.Repeat("x", 2000) + `"}`
	got := e.do("POST", api+"/entities/s1/attrs", big).wantErr(t, http.StatusRequestEntityTooLarge, "too_large")
	if got.Details["limit"] != float64(1024) {
		t.Fatalf("details %v", got.Details)
	}
	// Without a Content-Length (chunked), the cap is met while reading.
	req, _ := http.NewRequest("POST", e.ts.URL+api+"/entities/s1/attrs", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	(&resp{Status: res.StatusCode, Header: res.Header, Body: b}).wantErr(t, http.StatusRequestEntityTooLarge, "too_large")
	// Under the cap it goes through, and nothing of the refused ones landed.
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "note", "value": "short"}).want(t, 201)
	if n := len(e.get("s1").Attrs); n != 1 {
		t.Fatalf("attrs: %d", n)
	}
}

func TestDefaultBodyLimit(t *testing.T) {
	e := newEnv(t)
	if e.srv.opts.MaxBodyBytes != 4<<20 {
		t.Fatalf("default cap %d, want 4 MiB", e.srv.opts.MaxBodyBytes)
	}
	e.do("POST", api+"/entities", bytes.Repeat([]byte(" "), 4<<20+1)).wantErr(t, 413, "too_large")
}

// Internal failures answer 500 with the request id and nothing else; the
// log has the cause under the same id.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server")
	e.store.Close() // every query now fails inside database/sql
	for _, c := range []struct{ method, path, body string }{
		{"GET", api + "/entities/s1", ""},
		{"POST", api + "/entities/s1/attrs", `{"key":"k","value":1}`},
		{"GET", api + "/changes", ""},
	} {
		r := e.do(c.method, c.path, c.body)
		got := r.wantErr(t, http.StatusInternalServerError, "internal")
		if !strings.Contains(got.Message, got.RequestID) {
			t.Errorf("message %q does not carry the request id %s", got.Message, got.RequestID)
		}
		for _, leak := range []string{"sql", "database", "closed", "sqlite", ".go"} {
			if strings.Contains(strings.ToLower(string(r.Body)), leak) {
				t.Errorf("500 body leaks %q: %s", leak, r.Body)
			}
		}
		var logged bool
		for _, l := range e.logs.lines(t) {
			if l["msg"] == "internal error" && l["request_id"] == got.RequestID && strings.Contains(fmt.Sprint(l["err"]), "closed") {
				logged = true
			}
		}
		if !logged {
			t.Errorf("no log line with the cause for request %s:\n%s", got.RequestID, e.logs.String())
		}
	}
}

func TestPanicsAreInternalErrors(t *testing.T) {
	e := newEnv(t)
	h := e.srv.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom: secret detail") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	r := &resp{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	r.wantErr(t, 500, "internal")
	if strings.Contains(string(r.Body), "boom") {
		t.Fatalf("panic text leaked: %s", r.Body)
	}
	if !strings.Contains(e.logs.String(), "boom: secret detail") {
		t.Fatalf("panic not logged: %s", e.logs.String())
	}
}

// The one mapping from kinds to statuses, and the error body's shape,
// including a query syntax error's position.
func TestErrorMapping(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		err        error
		status     int
		want       string
		retryAfter string
	}{
		{entity.Errorf(entity.KindInvalid, "bad"), 400, `{"error":{"code":"invalid","message":"bad","request_id":"rid"}}`, ""},
		{&query.SyntaxError{Message: "expected a value after \"=\"", Line: 1, Column: 14}, 400,
			`{"error":{"code":"query_syntax","message":"expected a value after \"=\"","position":{"line":1,"column":14},"request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindUnauthorized, "who are you"), 401, `{"error":{"code":"unauthorized","message":"who are you","request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindForbidden, "no"), 403, `{"error":{"code":"forbidden","message":"no","request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindNotFound, "gone"), 404, `{"error":{"code":"not_found","message":"gone","request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindConflict, "no free port").WithCode("exhausted").With("n", 0), 409,
			`{"error":{"code":"conflict","message":"no free port","reason":"exhausted","details":{"n":0},"request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindPrecondition, "stale"), 412, `{"error":{"code":"precondition_failed","message":"stale","request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindTooLarge, "big"), 413, `{"error":{"code":"too_large","message":"big","request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindUnsupportedMedia, "sent as text/plain").With("needs", "application/json"), 415,
			`{"error":{"code":"unsupported_media_type","message":"sent as text/plain","details":{"needs":"application/json"},"request_id":"rid"}}`, ""},
		{fmt.Errorf("attrs[1]: %w", entity.Errorf(entity.KindInvalid, "bad key")), 400, `{"error":{"code":"invalid","message":"attrs[1]: bad key","request_id":"rid"}}`, ""},
		{entity.Internal("read", fmt.Errorf("SQL logic error near SELECT")), 500,
			`{"error":{"code":"internal","message":"internal error; the server log has the details under request id rid","request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindTooExpensive, "slow").WithCode("query-timeout"), 422,
			`{"error":{"code":"too_expensive","message":"slow","reason":"query-timeout","request_id":"rid"}}`, ""},
		{entity.Errorf(entity.KindTooManyRequests, "yours are busy").With(entity.RetryAfter, 1), 429,
			`{"error":{"code":"too_many_requests","message":"yours are busy","details":{"retry_after":1},"request_id":"rid"}}`, "1"},
		{entity.Errorf(entity.KindUnavailable, "full").With(entity.RetryAfter, 2), 503,
			`{"error":{"code":"unavailable","message":"full","details":{"retry_after":2},"request_id":"rid"}}`, "2"},
		{entity.Errorf(entity.KindUnavailable, "full, no hint"), 503,
			`{"error":{"code":"unavailable","message":"full, no hint","request_id":"rid"}}`, "1"},
		{fmt.Errorf("plain Go error: %s", "/home/x/y.go:12"), 500,
			`{"error":{"code":"internal","message":"internal error; the server log has the details under request id rid","request_id":"rid"}}`, ""},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req = req.WithContext(context.WithValue(req.Context(), infoKey{}, &reqInfo{id: "rid"}))
		e.srv.writeError(rec, req, tc.err)
		if rec.Code != tc.status {
			t.Errorf("%v: status %d, want %d", tc.err, rec.Code, tc.status)
		}
		if diff := cmp.Diff(tc.want, strings.TrimSpace(rec.Body.String())); diff != "" {
			t.Errorf("%v: body (-want +got):\n%s", tc.err, diff)
		}
		if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
			t.Errorf("%v: Retry-After %q, want %q", tc.err, got, tc.retryAfter)
		}
	}
	// Every kind has a status.
	for _, k := range []entity.ErrorKind{entity.KindInvalid, entity.KindNotFound, entity.KindConflict, entity.KindPrecondition,
		entity.KindUnauthorized, entity.KindForbidden, entity.KindTooLarge, entity.KindUnsupportedMedia, entity.KindInternal,
		entity.KindTooExpensive, entity.KindTooManyRequests, entity.KindUnavailable} {
		if statusOf[k] == 0 {
			t.Errorf("kind %s has no status", k)
		}
	}
}

// Many clients adding values to one entity at once: every write lands,
// each as exactly one change.
func TestConcurrentAttributeWrites(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server")
	start := e.changeCount()
	const writers, each = 16, 5
	var wg sync.WaitGroup
	errs := make(chan string, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprintf(`{"key":"tag","value":"w%d-%d"}`, w, i)
				req, _ := http.NewRequest("POST", e.ts.URL+api+"/entities/s1/attrs", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				res, err := e.ts.Client().Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 201 {
					errs <- fmt.Sprintf("w%d-%d: status %d", w, i, res.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	got := e.get("s1")
	if len(got.Attrs) != writers*each || got.Version != 1+writers*each {
		t.Fatalf("%d attrs at version %d, want %d at %d", len(got.Attrs), got.Version, writers*each, 1+writers*each)
	}
	var p entity.Changes
	e.do("GET", api+"/changes?limit=1000&since="+itoa(start), nil).want(t, 200).decode(t, &p)
	seen := map[string]int{}
	for _, c := range p.Changes {
		if c.Op != entity.OpAttrAdd || c.Entity != "s1" {
			t.Fatalf("unexpected change %+v", c)
		}
		seen[string(c.After)]++
	}
	if len(p.Changes) != writers*each || len(seen) != writers*each {
		t.Fatalf("%d changes, %d distinct, want %d each", len(p.Changes), len(seen), writers*each)
	}
}

func TestAccessLogAndRequestIDs(t *testing.T) {
	e := newEnv(t)
	e.token = e.newToken("alice", entity.RoleWrite)
	r := e.do("POST", api+"/entities", map[string]any{"name": "s1", "driver": "server"}, "X-Request-Id", "trace-42").want(t, 201)
	if r.Header.Get("X-Request-Id") != "trace-42" {
		t.Fatalf("a plain client request id is kept: got %q", r.Header.Get("X-Request-Id"))
	}
	r = e.do("GET", api+"/entities/s1?at=1", nil, "X-Request-Id", "bad id with spaces")
	id := r.Header.Get("X-Request-Id")
	if len(id) != 16 {
		t.Fatalf("a malformed client id is replaced: got %q", id)
	}
	e.do("GET", api+"/entities/ghost", nil).wantErr(t, 404, "not_found")

	var lines []map[string]any
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "request" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d access log lines, want 3:\n%s", len(lines), e.logs.String())
	}
	for _, l := range lines {
		for _, k := range []string{"method", "path", "status", "duration_ms", "request_id", "actor"} {
			if _, ok := l[k]; !ok {
				t.Errorf("access log line lacks %s: %v", k, l)
			}
		}
		if l["actor"] != "alice" {
			t.Errorf("actor %v, want alice", l["actor"])
		}
	}
	want := []string{"POST /api/v1/entities 201 trace-42", "GET /api/v1/entities/s1 200 " + id, "GET /api/v1/entities/ghost 404 "}
	for i, l := range lines {
		got := fmt.Sprintf("%s %s %v %s", l["method"], l["path"], l["status"], l["request_id"])
		if !strings.HasPrefix(got, want[i]) {
			t.Errorf("line %d: %q, want %q", i, got, want[i])
		}
	}
	if lines[1]["query"] != "at=1" {
		t.Errorf("query not logged: %v", lines[1])
	}
	if strings.Contains(e.logs.String(), entity.TokenPrefix) {
		t.Fatalf("a token reached the log:\n%s", e.logs.String())
	}
}

func TestHealthzUnavailable(t *testing.T) {
	e := newEnv(t)
	e.store.Close()
	r := e.do("GET", "/healthz", nil).want(t, http.StatusServiceUnavailable)
	got := r.obj(t)
	if got["status"] != "unavailable" || got["request_id"] != r.Header.Get("X-Request-Id") {
		t.Fatalf("healthz: %v", got)
	}
	if strings.Contains(strings.ToLower(string(r.Body)), "closed") {
		t.Fatalf("healthz leaks the cause: %s", r.Body)
	}
}

// TestAccessLogNamesTheWebInterfacesViewer: a page of the interface is
// logged with who looked at it, as an API request is.
func TestAccessLogNamesTheWebInterfacesViewer(t *testing.T) {
	e := newEnv(t)
	res, err := e.ts.Client().Get(e.ts.URL + "/ui/?q=driver%3Aserver")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("search page: %d", res.StatusCode)
	}
	var found bool
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "request" && l["path"] == "/ui/" {
			found = true
			if l["actor"] != entity.DefaultActor {
				t.Errorf("the page is logged with actor %v, want %s", l["actor"], entity.DefaultActor)
			}
		}
	}
	if !found {
		t.Fatalf("no access log line for the page:\n%s", e.logs.String())
	}
}
