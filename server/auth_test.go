package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/mux"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/server/ui"
)

func (e *env) newToken(name string, role entity.Role) string {
	e.t.Helper()
	secret, _, err := e.store.CreateToken(context.Background(), entity.Caller{Actor: "clustod/test"}, name, role)
	if err != nil {
		e.t.Fatalf("create token: %v", err)
	}
	return secret
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	// No token yet: anonymous access, recorded as "anonymous".
	e.mk("s1", "server")
	who := e.do("GET", api+"/whoami", nil).want(t, 200).obj(t)
	if diff := cmp.Diff(map[string]any{"name": "anonymous", "role": "admin"}, who); diff != "" {
		t.Fatalf("anonymous whoami (-want +got):\n%s", diff)
	}
	reader := e.newToken("robot-ro", entity.RoleRead)
	writer := e.newToken("provisioner", entity.RoleWrite)
	admin := e.newToken("alice", entity.RoleAdmin)

	// From the first token on, every request needs one.
	r := e.do("GET", api+"/entities/s1", nil)
	r.wantErr(t, 401, "unauthorized")
	if r.Header.Get("WWW-Authenticate") != `Bearer realm="clusto"` {
		t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	for _, h := range []string{"Bearer", "Basic dXNlcjpwYXNz", "Bearer clusto_not-a-real-token", "Bearer nonsense", "Bearer " + reader + "x"} {
		e.do("GET", api+"/entities/s1", nil, "Authorization", h).wantErr(t, 401, "unauthorized")
	}
	// healthz stays open.
	e.do("GET", "/healthz", nil).want(t, 200)

	e.token = reader
	e.get("s1")
	got := e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "k", "value": 1}).wantErr(t, 403, "forbidden")
	if !strings.Contains(got.Message, `"robot-ro" has the read role`) {
		t.Fatalf("message %q", got.Message)
	}

	e.token = writer
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "k", "value": 1}).want(t, 201)
	e.do("GET", api+"/tokens", nil).wantErr(t, 403, "forbidden")
	var p entity.Changes
	e.do("GET", api+"/changes?since=1", nil).want(t, 200).decode(t, &p)
	if len(p.Changes) != 1 || p.Changes[0].Actor != "provisioner" {
		t.Fatalf("the change log must name the token as the actor: %+v", p.Changes)
	}

	e.token = admin
	e.do("GET", api+"/tokens", nil).want(t, 200)
	e.do("DELETE", api+"/tokens/provisioner", nil).want(t, 200)
	e.token = writer
	e.do("GET", api+"/entities/s1", nil).wantErr(t, 401, "unauthorized")

	// Case of the scheme does not matter.
	e.token = ""
	e.do("GET", api+"/entities/s1", nil, "Authorization", "bearer "+reader).want(t, 200)
}

func TestNoAnonymousAccessUnlessAllowed(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowAnonymous = false })
	e.do("GET", api+"/changes", nil).wantErr(t, 401, "unauthorized")
	e.do("POST", api+"/entities", map[string]any{"name": "s1", "driver": "server"}).wantErr(t, 401, "unauthorized")
}

// concretePath fills a route template's variables.
func concretePath(tmpl string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(tmpl, "x")
}

// Walk the router itself, not the table: every route it would serve is in
// the table, every state-changing one needs at least the write role, and
// a read token gets 403 from it before anything else happens.
func TestEveryWriteRouteRefusesReadTokens(t *testing.T) {
	e := newEnv(t)
	e.mk("x", "server")
	e.token = e.newToken("reader", entity.RoleRead)
	writer := e.newToken("writer", entity.RoleWrite)
	changes := e.changeCount()

	declared := map[string]route{}
	for _, rt := range e.srv.routes {
		declared[rt.Method+" "+rt.fullPath()] = rt
	}
	walked := map[string]bool{}
	var writes, adminOnly int
	err := e.srv.router.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := r.GetPathTemplate()
		if err != nil {
			return err
		}
		if strings.HasPrefix(tmpl, ui.Prefix) || tmpl == "/" {
			// The web interface routes its own pages (server/ui), and
			// checks the role of each form there; its tests prove it.
			return nil
		}
		methods, err := r.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s declares no method: %w", tmpl, err)
		}
		for _, m := range methods {
			key := m + " " + tmpl
			walked[key] = true
			rt, ok := declared[key]
			if !ok {
				t.Errorf("router serves %s, which is not in the route table", key)
				continue
			}
			if rt.Reads {
				// A POST that only reads is open to read tokens, and must
				// not change anything.
				before := e.changeCount()
				if got := e.do(m, concretePath(tmpl), `{"q":"*","content":"entities: {}"}`); got.Status == http.StatusForbidden {
					t.Errorf("%s refuses a read token: %s", key, got.Body)
				}
				if after := e.changeCount(); after != before {
					t.Errorf("%s changed the log from %d to %d", key, before, after)
				}
				continue
			}
			if m == http.MethodGet {
				continue
			}
			writes++
			if !rt.Role.Allows(entity.RoleWrite) {
				t.Errorf("%s changes state but needs only %q", key, rt.Role)
			}
			// A body that would be valid does not matter: the role check comes first.
			got := e.do(m, concretePath(tmpl), `{"name":"y","driver":"server"}`).wantErr(t, http.StatusForbidden, "forbidden")
			if got.Details["needs"] != string(rt.Role) {
				t.Errorf("%s: details %v", key, got.Details)
			}
			if rt.Role == entity.RoleAdmin {
				adminOnly++
				e.do(m, concretePath(tmpl), `{}`, "Authorization", "Bearer "+writer).wantErr(t, http.StatusForbidden, "forbidden")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for key := range declared {
		if !walked[key] {
			t.Errorf("%s is in the table but not served", key)
		}
	}
	if writes < 12 || adminOnly < 4 {
		t.Fatalf("walked %d write routes (%d admin): fewer than the API has", writes, adminOnly)
	}
	// Operations routes that read everything are admin-only too, though
	// they change nothing in the inventory.
	for _, key := range []string{"POST " + APIPrefix + "/admin/backup"} {
		if !walked[key] || declared[key].Role != entity.RoleAdmin {
			t.Errorf("%s must be served and need the admin role; it needs %q", key, declared[key].Role)
		}
	}
	if _, err := os.Stat(e.srv.opts.BackupDir); !os.IsNotExist(err) {
		t.Errorf("forbidden requests made the backup directory: %v", err)
	}
	if n := e.changeCount(); n != changes {
		t.Fatalf("forbidden requests recorded changes: %d -> %d", changes, n)
	}
}

func TestRegisterRefusesUnguardedRoutes(t *testing.T) {
	e := newEnv(t)
	for _, rt := range []route{
		{Method: http.MethodPost, Path: "/danger", Role: entity.RoleRead, Handle: e.srv.whoami},
		{Method: http.MethodDelete, Path: "/danger", Handle: e.srv.whoami},
		{Method: http.MethodGet, Path: "/norole", Handle: e.srv.whoami},
		{Method: http.MethodPost, Path: "/open", Public: true, Handle: e.srv.whoami},
		{Method: http.MethodGet, Path: APIPrefix + "/open", Public: true, Handle: e.srv.whoami},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("register accepted %s %s (role %q, public %v)", rt.Method, rt.Path, rt.Role, rt.Public)
				}
			}()
			e.srv.register(rt)
		}()
	}
}

func TestTokenEndpoints(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", api+"/tokens", map[string]any{"name": "alice", "role": "admin"}).want(t, 201).obj(t)
	secret, _ := r["token"].(string)
	if !strings.HasPrefix(secret, entity.TokenPrefix) || r["name"] != "alice" || r["role"] != "admin" {
		t.Fatalf("created: %v", r)
	}
	e.token = secret
	e.do("POST", api+"/tokens", map[string]any{"name": "bot", "role": "read"}).want(t, 201)
	e.do("POST", api+"/tokens", map[string]any{"name": "bot", "role": "read"}).wantErr(t, 409, "conflict")
	e.do("POST", api+"/tokens", map[string]any{"name": "bot2", "role": "root"}).wantErr(t, 400, "invalid")
	e.do("POST", api+"/tokens", map[string]any{"name": "has space", "role": "read"}).wantErr(t, 400, "invalid")
	e.do("POST", api+"/tokens", map[string]any{"name": "anonymous", "role": "read"}).wantErr(t, 400, "invalid")
	var list struct {
		Tokens []entity.Token `json:"tokens"`
	}
	body := e.do("GET", api+"/tokens", nil).want(t, 200)
	body.decode(t, &list)
	var names []string
	for _, tk := range list.Tokens {
		names = append(names, tk.Name+":"+string(tk.Role))
	}
	if diff := cmp.Diff([]string{"alice:admin", "bot:read"}, names); diff != "" {
		t.Fatalf("tokens (-want +got):\n%s", diff)
	}
	if strings.Contains(string(body.Body), entity.TokenPrefix) {
		t.Fatalf("token list shows a secret: %s", body.Body)
	}
	e.do("DELETE", api+"/tokens/bot", nil).want(t, 200)
	e.do("DELETE", api+"/tokens/bot", nil).wantErr(t, 404, "not_found")
	who := e.do("GET", api+"/whoami", nil).want(t, 200).obj(t)
	if who["name"] != "alice" || who["role"] != "admin" {
		t.Fatalf("whoami %v", who)
	}
}

func TestDriverEndpoints(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/drivers.json"
	writeFile(t, file, `{"drivers":[{"name":"toaster","kind":"equipment","parents":["rack"],"ports":[{"type":"power","names":["plug"]}]}]}`)
	e := newEnv(t, func(o *Options) { o.DriversFile = file })
	var list struct {
		Drivers []struct {
			Name string `json:"name"`
		} `json:"drivers"`
	}
	e.do("GET", api+"/drivers", nil).want(t, 200).decode(t, &list)
	if len(list.Drivers) < 10 || !slices.ContainsFunc(list.Drivers, func(d struct {
		Name string `json:"name"`
	}) bool {
		return d.Name == "server"
	}) {
		t.Fatalf("drivers: %+v", list)
	}
	sw := e.do("GET", api+"/drivers/switch", nil).want(t, 200).obj(t)
	if ports := sw["port_list"].([]any); len(ports) != 50 {
		t.Fatalf("switch ports: %d", len(ports))
	}
	e.do("GET", api+"/drivers/toaster", nil).wantErr(t, 404, "not_found")
	got := e.do("POST", api+"/drivers/reload", nil).want(t, 200).obj(t)
	if !slices.Contains(got["drivers"].([]any), any("toaster")) {
		t.Fatalf("reload: %v", got)
	}
	e.do("POST", api+"/entities", map[string]any{"name": "t1", "driver": "toaster"}).want(t, 201)
	writeFile(t, file, `{"drivers":[{"name":"Bad Name","kind":"equipment"}]}`)
	e.do("POST", api+"/drivers/reload", nil).wantErr(t, 400, "invalid")

	plain := newEnv(t)
	plain.do("POST", api+"/drivers/reload", nil).wantErr(t, 409, "conflict")
}

// Creating and revoking tokens over the API is in the audit list, with the
// caller and the request id, readable only by admins; the secrets appear
// in no answer but the creating one, in no log line and not in the change
// log.
func TestTokenAuditEndpoint(t *testing.T) {
	e := newEnv(t)
	changes := e.changeCount()
	first := e.do("POST", api+"/tokens", map[string]any{"name": "alice", "role": "admin"}).want(t, 201)
	alice := first.obj(t)["token"].(string)
	e.token = alice
	bot := e.do("POST", api+"/tokens", map[string]any{"name": "bot", "role": "write"}).want(t, 201)
	botSecret := bot.obj(t)["token"].(string)
	e.do("POST", api+"/tokens", map[string]any{"name": "bot", "role": "read"}).wantErr(t, 409, "conflict")
	revoke := e.do("DELETE", api+"/tokens/bot", nil).want(t, 200)
	e.do("DELETE", api+"/tokens/bot", nil).wantErr(t, 404, "not_found")
	writer := e.newToken("writer", entity.RoleWrite)

	type event struct {
		ID        int64  `json:"id"`
		Actor     string `json:"actor"`
		Action    string `json:"action"`
		Token     string `json:"token"`
		Role      string `json:"role"`
		RequestID string `json:"request_id"`
	}
	var page struct {
		Events []event `json:"events"`
		Next   int64   `json:"next"`
	}
	all := e.do("GET", api+"/tokens/audit", nil).want(t, 200)
	all.decode(t, &page)
	want := []event{
		{ID: 1, Actor: "anonymous", Action: "create", Token: "alice", Role: "admin", RequestID: first.Header.Get("X-Request-Id")},
		{ID: 2, Actor: "alice", Action: "create", Token: "bot", Role: "write", RequestID: bot.Header.Get("X-Request-Id")},
		{ID: 3, Actor: "alice", Action: "revoke", Token: "bot", Role: "write", RequestID: revoke.Header.Get("X-Request-Id")},
		{ID: 4, Actor: "clustod/test", Action: "create", Token: "writer", Role: "write"},
	}
	if diff := cmp.Diff(want, page.Events); diff != "" || page.Next != 4 {
		t.Fatalf("audit (next %d; -want +got):\n%s", page.Next, diff)
	}
	// Paged as the change log is.
	for _, tc := range []struct {
		query string
		ids   []int64
		next  int64
	}{
		{"?limit=2", []int64{1, 2}, 2},
		{"?since=2&limit=1", []int64{3}, 3},
		{"?since=4", nil, 4},
	} {
		var p struct {
			Events []event `json:"events"`
			Next   int64   `json:"next"`
		}
		e.do("GET", api+"/tokens/audit"+tc.query, nil).want(t, 200).decode(t, &p)
		var ids []int64
		for _, ev := range p.Events {
			ids = append(ids, ev.ID)
		}
		if diff := cmp.Diff(tc.ids, ids); diff != "" || p.Next != tc.next {
			t.Errorf("%s: next %d, want %d; ids (-want +got):\n%s", tc.query, p.Next, tc.next, diff)
		}
	}
	e.do("GET", api+"/tokens/audit?limit=0", nil).wantErr(t, 400, "invalid")
	e.do("GET", api+"/tokens/audit?before=3", nil).wantErr(t, 400, "invalid")
	e.do("GET", api+"/tokens/audit", nil, "Authorization", "Bearer "+writer).wantErr(t, 403, "forbidden")

	for _, secret := range []string{alice, botSecret, writer} {
		if strings.Contains(string(all.Body), secret) || strings.Contains(e.logs.String(), secret) {
			t.Errorf("a secret is in the audit answer or the log:\n%s\n%s", all.Body, e.logs.String())
		}
	}
	if n := e.changeCount(); n != changes {
		t.Errorf("token changes were written into the change log: %d -> %d", changes, n)
	}
}
