package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// heavyRequests are one request of every heavy kind: the routes admitted
// through the queue, and the dry runs of the write routes.
var heavyRequests = []struct{ name, method, path, body string }{
	{"GET /query", "GET", api + "/query?q=*", ""},
	{"POST /query", "POST", api + "/query", `{"q":"*"}`},
	{"GET /export", "GET", api + "/export", ""},
	{"POST /plan", "POST", api + "/plan", `{"content":"entities:\n  p1: {driver: pool}\n"}`},
	{"POST /batch dry run", "POST", api + "/batch", `{"dry_run":true,"ops":[{"op":"create","name":"b1","driver":"pool"}]}`},
	{"POST /apply dry run", "POST", api + "/apply", `{"dry_run":true,"content":"entities:\n  a1: {driver: pool}\n"}`},
	{"POST /allocate dry run", "POST", api + "/allocate", `{"query":"driver:server","count":1,"dry_run":true}`},
}

// hold takes n turns among heavy requests as token and returns the
// function that gives them back.
func (e *env) hold(token string, n int) func() {
	e.t.Helper()
	var releases []func()
	for range n {
		release, err := e.srv.heavy.enter(context.Background(), token)
		if err != nil {
			e.t.Fatalf("hold a turn: %v", err)
		}
		releases = append(releases, release)
	}
	return func() {
		for _, r := range releases {
			r()
		}
	}
}

// wantRefusal checks a refusal for load: the status, the JSON error with
// its code and reason, and Retry-After.
func (r *resp) wantRefusal(t *testing.T, status int, code, reason, retryAfter string) apiErr {
	t.Helper()
	er := r.wantErr(t, status, code)
	if er.Reason != reason || r.Header.Get("Retry-After") != retryAfter {
		t.Fatalf("reason %q, Retry-After %q; want %q and %q: %s", er.Reason, r.Header.Get("Retry-After"), reason, retryAfter, r.Body)
	}
	return er
}

// TestAdmission: each heavy kind of request is refused with 429 when its
// token has as many heavy requests as it may, and with 503 when the
// server's queue is full or a turn does not come in time, each with
// Retry-After and the JSON error naming the flag; meanwhile light
// requests (reads, single writes, a real batch, /healthz) are served, and
// once turns are free the heavy requests are too.
func TestAdmission(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.HeavyRunning, o.HeavyQueue, o.HeavyPerToken, o.HeavyWait = 2, 1, 2, 50*time.Millisecond
	})
	e.mk("s1", "server")
	light := func(t *testing.T) {
		t.Helper()
		e.do("GET", api+"/entities/s1", nil).want(t, http.StatusOK)
		e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "seen", "value": time.Now().UnixNano()}).want(t, http.StatusCreated)
		// A new value each time: a set to the value already there records nothing.
		e.do("POST", api+"/batch", fmt.Sprintf(`{"ops":[{"op":"attr_set","name":"s1","key":"status","values":["live-%d"]}]}`, time.Now().UnixNano())).want(t, http.StatusOK)
		e.do("GET", "/healthz", nil).want(t, http.StatusOK)
	}
	for _, hr := range heavyRequests {
		t.Run(hr.name, func(t *testing.T) {
			// The token's own bound: two turns held by anonymous.
			release := e.hold(entity.DefaultActor, 2)
			er := e.do(hr.method, hr.path, hr.body).wantRefusal(t, http.StatusTooManyRequests, "too_many_requests", "per_token", "1")
			if !strings.Contains(er.Message, `token "anonymous" already has 2 heavy requests`) || !strings.Contains(er.Message, "--heavy-per-token") {
				t.Errorf("message %q", er.Message)
			}
			light(t)
			release()

			// Both turns taken by others: the request waits, and gives up.
			release = e.hold("other", 2)
			er = e.do(hr.method, hr.path, hr.body).wantRefusal(t, http.StatusServiceUnavailable, "unavailable", "queue_timeout", "2")
			if !strings.Contains(er.Message, "waited 50ms") || !strings.Contains(er.Message, "--heavy-wait") {
				t.Errorf("message %q", er.Message)
			}
			// And with the one place in the queue taken, it is refused at
			// once. The place is taken by a waiter that gives up after the
			// 50 ms wait; when the machine is so busy that the request
			// comes later than that, it finds the place free again, waits
			// in it and times out: then the waiter and the request are
			// tried again, up to ten times.
			for attempt := 1; ; attempt++ {
				waiting := make(chan error, 1)
				go func() {
					r, err := e.srv.heavy.enter(context.Background(), "third")
					if err == nil {
						r()
					}
					waiting <- err
				}()
				queued := false
				for !queued {
					select {
					case err := <-waiting: // gone before it was seen waiting
						waiting <- err
						queued = true
					default:
						queued = e.srv.heavy.Waiting() > 0
						time.Sleep(time.Millisecond)
					}
				}
				r := e.do(hr.method, hr.path, hr.body)
				var late struct{ Error apiErr }
				if json.Unmarshal(r.Body, &late) == nil && late.Error.Reason == "queue_timeout" && attempt < 10 {
					<-waiting
					continue
				}
				er = r.wantRefusal(t, http.StatusServiceUnavailable, "unavailable", "queue_full", "2")
				if !strings.Contains(er.Message, "--heavy-queue") {
					t.Errorf("message %q", er.Message)
				}
				light(t)
				<-waiting
				break
			}
			release()

			e.do(hr.method, hr.path, hr.body).want(t, http.StatusOK)
		})
	}
	if n := e.changeCount(); n != 1+4*int64(len(heavyRequests)) {
		t.Errorf("%d changes: the light writes and nothing of the refused or dry requests", n)
	}
	body := string(e.do("GET", "/metrics", nil).Body)
	for _, want := range []string{
		fmt.Sprintf(`clusto_heavy_requests_total{result="per_token"} %d`, len(heavyRequests)),
		fmt.Sprintf(`clusto_heavy_requests_total{result="queue_full"} %d`, len(heavyRequests)),
		"clusto_heavy_running 0",
		"clusto_heavy_waiting 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestRequestLimits: a query or an export past its deadline, a plan past
// the dry-run deadline, and an answer past the size limit are refused
// with 422 too_expensive naming the flag that sets the limit.
func TestRequestLimits(t *testing.T) {
	tiny := func(o *Options) { o.QueryTimeout, o.DryRunTimeout = time.Nanosecond, time.Nanosecond }
	small := func(o *Options) { o.MaxAnswerBytes = 3000 }
	for _, c := range []struct {
		name, method, path, body string
		opts                     func(*Options)
		reason, message          string
	}{
		{"query deadline", "GET", api + "/query?q=*", "", tiny, "query-timeout", "the query did not finish within 1ns, the limit (clustod serve --query-timeout)"},
		{"query deadline, POST", "POST", api + "/query", `{"q":"driver:server"}`, tiny, "query-timeout", "--query-timeout"},
		{"export deadline", "GET", api + "/export", "", tiny, "query-timeout", "--query-timeout"},
		{"plan deadline", "POST", api + "/plan", `{"content":"entities:\n  p1: {driver: pool}\n"}`, tiny, "dry-run-timeout", "the dry run did not finish within 1ns, the limit (clustod serve --dry-run-timeout)"},
		{"batch dry run deadline", "POST", api + "/batch", `{"dry_run":true,"ops":[{"op":"create","name":"b1","driver":"pool"}]}`, tiny, "dry-run-timeout", "--dry-run-timeout"},
		{"query answer", "GET", api + "/query?q=*", "", small, "max-answer", "the answer to this query would be larger than 3000 bytes, the limit (clustod serve --max-answer); ask for a smaller page"},
		{"export answer", "GET", api + "/export", "", small, "max-answer", "the answer to this export would be larger than 3000 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, c.opts)
			for i := range 20 {
				e.do("POST", api+"/entities", map[string]any{"name": fmt.Sprintf("s%02d", i), "driver": "server",
					"attrs": []map[string]any{{"key": "notes", "value": strings.Repeat("x", 100)}}}).want(t, http.StatusCreated)
			}
			er := e.do(c.method, c.path, c.body).wantErr(t, http.StatusUnprocessableEntity, "too_expensive")
			if er.Reason != c.reason || !strings.Contains(er.Message, c.message) {
				t.Errorf("reason %q, message %q; want %q and %q", er.Reason, er.Message, c.reason, c.message)
			}
			if n := e.changeCount(); n != 20 {
				t.Errorf("%d changes, want the 20 creates", n)
			}
		})
	}
	// Under the size limit, a smaller page is answered.
	e := newEnv(t, small)
	e.mk("a", "server", "b", "server")
	var p entity.Results
	e.do("GET", api+"/query?q=*&limit=1", nil).want(t, http.StatusOK).decode(t, &p)
	if len(p.Results) != 1 || p.Total != 2 {
		t.Errorf("page %+v", p)
	}
}

// TestHealthzBesideABusyReadPool: with every connection of the read pool
// held, /healthz still answers 200 with the newest change, from a
// connection of its own (it used to wait for the pool, and answer 503
// after two seconds).
func TestHealthzBesideABusyReadPool(t *testing.T) {
	e := newEnv(t)
	e.mk("dc1", "datacenter")
	// Every read pool connection held by a View that has read.
	n := e.store.ReadPoolStats().MaxOpenConnections
	release := make(chan struct{})
	var held, done sync.WaitGroup
	held.Add(n)
	for range n {
		done.Add(1)
		go func() {
			defer done.Done()
			err := e.store.View(context.Background(), func(v *store.View) error {
				err := v.QueryRowContext(context.Background(), "SELECT count(*) FROM entities").Scan(new(int))
				held.Done()
				<-release
				return err
			})
			if err != nil {
				t.Errorf("view: %v", err)
			}
		}()
	}
	held.Wait()
	defer func() {
		close(release)
		done.Wait()
	}()
	if s := e.store.ReadPoolStats(); s.InUse != s.MaxOpenConnections {
		t.Fatalf("the pool is not full: %+v", s)
	}
	got := e.do("GET", "/healthz", nil).want(t, http.StatusOK).obj(t)
	if diff := cmp.Diff(map[string]any{"status": "ok", "change": float64(1)}, got); diff != "" {
		t.Errorf("healthz (-want +got):\n%s", diff)
	}
}

// TestDryRunsGiveWayToWrites: a plan, or a batch's dry run, that cannot
// get the writer because real writes hold it is answered, at its
// deadline, 503 with Retry-After (reason dry_run_preempted), and changes
// nothing; once the write is done the same request is answered.
func TestDryRunsGiveWayToWrites(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.DryRunTimeout = 200 * time.Millisecond })
	for _, hr := range heavyRequests[3:6] {
		t.Run(hr.name, func(t *testing.T) {
			began, stop, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				done <- e.store.Update(context.Background(), "writer", func(tx *store.Tx) error {
					close(began)
					<-stop
					return tx.Create(entity.NewEntity{Name: "w-" + strings.ReplaceAll(hr.name, " ", "-"), Driver: "server"})
				})
			}()
			<-began
			before := e.changeCount()
			er := e.do(hr.method, hr.path, hr.body).wantRefusal(t, http.StatusServiceUnavailable, "unavailable", "dry_run_preempted", "1")
			if !strings.Contains(er.Message, "writes kept the writer busy") {
				t.Errorf("message %q", er.Message)
			}
			close(stop)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := e.changeCount(); n != before+1 {
				t.Errorf("%d changes, want the write's 1", n-before)
			}
			e.do(hr.method, hr.path, hr.body).want(t, http.StatusOK)
		})
	}
}
