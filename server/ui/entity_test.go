package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// datacenter builds dc1 (region west) holding rack r1, which holds s1 at
// U10 (status spare, owner from pool web: owner ops, and its own owner
// dev), cabled to switch sw1, console server cs1 and PDU pdu1, holding
// 10.0.0.1 of block net1 on eth0. It returns the change that set s1's
// status to spare, before a later change made it live.
func datacenter(e *env) (spare int64) {
	e.t.Helper()
	e.write(func(tx *store.Tx) error {
		for _, n := range []entity.NewEntity{
			{Name: "dc1", Driver: "datacenter", Attrs: []entity.Attr{{Key: "region", Value: entity.String("west")}}},
			{Name: "r1", Driver: "rack"},
			{Name: "web", Driver: "pool", Attrs: []entity.Attr{{Key: "owner", Value: entity.String("ops")}}},
			{Name: "s1", Driver: "server", Attrs: []entity.Attr{{Key: "owner", Value: entity.String("dev")}}},
			{Name: "sw1", Driver: "switch"}, {Name: "cs1", Driver: "console-server"}, {Name: "pdu1", Driver: "pdu"},
			{Name: "net1", Driver: "ipblock", Attrs: []entity.Attr{{Key: "cidr", Value: entity.String("10.0.0.0/24")}}},
		} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		if _, err := tx.Insert("dc1", "r1", entity.Placement{}); err != nil {
			return err
		}
		pos := int64(10)
		if _, err := tx.Insert("r1", "s1", entity.Placement{Position: &pos}); err != nil {
			return err
		}
		if _, err := tx.Insert("web", "s1", entity.Placement{}); err != nil {
			return err
		}
		for _, c := range [][2]entity.Endpoint{
			{{Name: "s1", Port: "eth0"}, {Name: "sw1", Port: "7"}},
			{{Name: "s1", Port: "console"}, {Name: "cs1", Port: "3"}},
			{{Name: "s1", Port: "psu1"}, {Name: "pdu1", Port: "12"}},
		} {
			if err := tx.Connect(c[0], c[1]); err != nil {
				return err
			}
		}
		_, err := tx.AllocateIP(entity.IPRequest{Block: "net1", Entity: "s1", Interface: "eth0"})
		return err
	})
	e.write(func(tx *store.Tx) error {
		_, err := tx.AddAttr("s1", entity.Attr{Key: "status", Value: entity.String("spare")})
		if err == nil {
			spare, err = tx.LastChange()
		}
		return err
	})
	e.write(func(tx *store.Tx) error {
		_, err := tx.SetAttr("s1", entity.AttrSelector{Key: "status"}, []entity.Value{entity.String("live")})
		return err
	})
	return spare
}

// cells is the text of each row of the table with class, cell by cell.
func cells(p *page, class string) [][]string {
	var out [][]string
	for _, t := range p.byClass(class) {
		for _, tr := range (&page{Doc: t}).all("tr") {
			var row []string
			for c := tr.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && c.Data == "td" {
					row = append(row, strings.Join(strings.Fields(text(c)), " "))
				}
			}
			if row != nil {
				out = append(out, row)
			}
		}
	}
	return out
}

// texts is the whitespace-folded text of every element with class.
func texts(p *page, class string) []string {
	var out []string
	for _, n := range p.byClass(class) {
		out = append(out, strings.Join(strings.Fields(text(n)), " "))
	}
	return out
}

// postForms is the page's forms that post to an entity edit.
func postForms(p *page) []*html.Node {
	var out []*html.Node
	for _, f := range p.all("form") {
		if attr(f, "method") == "post" && strings.HasPrefix(attr(f, "action"), "/ui/entity/") {
			out = append(out, f)
		}
	}
	return out
}

func TestEntityPageShowsEverything(t *testing.T) {
	e := newEnv(t, false)
	datacenter(e)
	p := e.get("/ui/entity?name=s1")
	if p.Status != http.StatusOK {
		t.Fatalf("entity page: %d %s", p.Status, p.Body)
	}
	if got := texts(p, "driver"); !cmp.Equal(got, []string{"server"}) {
		t.Errorf("driver %q", got)
	}
	if got := texts(p, "kind"); !cmp.Equal(got, []string{"equipment"}) {
		t.Errorf("kind %q", got)
	}
	// The merged view: own values (with the address's ip attribute), then
	// inherited ones nearest first with their origin; the pool's owner is
	// hidden by s1's own.
	want := [][]string{
		{"ip.eth0", "", "10.0.0.1", "ip", "own", "delete"},
		{"owner", "", "dev", "string", "own", "delete"},
		{"status", "", "live", "string", "own", "delete"},
		{"owner", "", "ops", "string", "inherited from web (hidden by a nearer value)", ""},
		{"region", "", "west", "string", "inherited from dc1", ""},
	}
	if diff := cmp.Diff(want, cells(p, "attrs")); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if n := len(p.byClass("inherited")); n != 2 {
		t.Errorf("%d rows marked inherited, want 2", n)
	}
	if diff := cmp.Diff([][]string{{"r1", "rack", "contains", "U10 (1U)", ""}, {"web", "pool", "member", "", "leave"}}, cells(p, "parents")); diff != "" {
		t.Errorf("parents (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"eth0", "nic", "sw1", "7"}, {"console", "console", "cs1", "3"}, {"psu1", "power", "pdu1", "12"}}, cells(p, "links")); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"console ← cs1 port 3"}, texts(p, "console")); diff != "" {
		t.Errorf("console (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"psu1 ← pdu1 outlet 12"}, texts(p, "power")); diff != "" {
		t.Errorf("power (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"10.0.0.1", "net1", "eth0"}}, cells(p, "allocs")); diff != "" {
		t.Errorf("allocations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"dc1 r1 s1"}, texts(p, "crumbs")); diff != "" {
		t.Errorf("breadcrumb (-want +got):\n%s", diff)
	}
	links := hrefs(p)
	for _, l := range []string{"/ui/entity?name=dc1", "/ui/rack?name=r1", "/ui/entity?name=web", "/ui/entity?name=sw1", "/ui/block?name=net1", "/ui/entity?name=cs1"} {
		if !links[l] {
			t.Errorf("no link to %s", l)
		}
	}
	// The timeline: newest first, with before and after.
	ops := texts(p, "op")
	if len(ops) < 3 || ops[0] != "attr_set" || ops[1] != "attr_add" {
		t.Fatalf("timeline operations %q, want attr_set, attr_add first", ops)
	}
	if b, a := texts(p, "before"), texts(p, "after"); len(b) == 0 || !strings.Contains(b[0], `"spare"`) || !strings.Contains(a[0], `"live"`) {
		t.Errorf("the newest change's before %q and after %q", b, a)
	}
	if len(p.byClass("past")) != 0 {
		t.Errorf("the present page is marked as the past")
	}
	if len(postForms(p)) < 6 {
		t.Errorf("%d edit forms, want the attribute, rack, pool and address forms", len(postForms(p)))
	}
}

func TestEntityAsOfAPastChange(t *testing.T) {
	e := newEnv(t, false)
	spare := datacenter(e)
	now := e.get("/ui/entity?name=s1")
	// The timeline links each change to the page as of it.
	asOf := "/ui/entity?name=s1&at=" + strconv.FormatInt(spare, 10)
	if !hrefs(now)[asOf] {
		t.Fatalf("no 'as of this change' link %s in the timeline", asOf)
	}
	p := e.get(asOf)
	if p.Status != http.StatusOK {
		t.Fatalf("as of %d: %d %s", spare, p.Status, p.Body)
	}
	past := texts(p, "past")
	if len(past) != 1 || !strings.HasPrefix(past[0], "You are looking at s1 as it was just after change "+strconv.FormatInt(spare, 10)+" (") ||
		!strings.HasSuffix(past[0], "See it now.") {
		t.Errorf("past banner %q", past)
	}
	var status []string
	for _, row := range cells(p, "attrs") {
		if row[0] == "status" {
			status = append(status, row[2])
		}
	}
	if !cmp.Equal(status, []string{"spare"}) {
		t.Errorf("status as of %d: %q, want spare", spare, status)
	}
	if n := len(postForms(p)); n != 0 {
		t.Errorf("%d edit forms on a page of the past", n)
	}
	// Its timeline ends at its change, and its links stay in the past.
	if ops := texts(p, "op"); len(ops) == 0 || ops[0] != "attr_add" {
		t.Errorf("timeline of the past starts with %q", ops)
	}
	if !hrefs(p)["/ui/entity?name=r1&at="+strconv.FormatInt(spare, 10)] {
		t.Errorf("the rack is not linked as of the same change")
	}
	for _, bad := range []string{"at=0", "at=-3", "at=x", "at=999999"} {
		if r := e.get("/ui/entity?name=s1&" + bad); r.Status != http.StatusBadRequest || len(r.byClass("problem")) != 1 {
			t.Errorf("%s: %d, want 400 with the reason", bad, r.Status)
		}
	}
}

func TestEntityPageRefusesBadNames(t *testing.T) {
	e := newEnv(t, false)
	for path, want := range map[string]int{
		"/ui/entity":                                  http.StatusBadRequest,
		"/ui/entity?name=":                            http.StatusBadRequest,
		"/ui/entity?name=a%20b":                       http.StatusBadRequest,
		"/ui/entity?name=nobody":                      http.StatusNotFound,
		"/ui/entity?name=nobody&before=x":             http.StatusBadRequest,
		"/ui/changes?op=drop":                         http.StatusBadRequest,
		"/ui/changes?entity=a%20b":                    http.StatusBadRequest,
		"/ui/changes?before=-1":                       http.StatusBadRequest,
		"/ui/entity?name=" + strings.Repeat("x", 300): http.StatusBadRequest,
	} {
		p := e.get(path)
		if p.Status != want || len(p.byClass("problem")) != 1 {
			t.Errorf("%s: %d, want %d with a message", path, p.Status, want)
		}
	}
	// A query string that is not UTF-8 is refused by the server's gate
	// before the interface sees it.
	if p := e.get("/ui/entity?name=%ff"); p.Status != http.StatusBadRequest {
		t.Errorf("a name that is not UTF-8: %d, want 400", p.Status)
	}
}

// form is the fields of the page's first form posting to action (set
// is a second button of the add form), with the fields overridden by set.
func form(t *testing.T, p *page, action string, set map[string]string) url.Values {
	t.Helper()
	if action == "/ui/entity/attr/set" {
		action = "/ui/entity/attr/add"
	}
	for _, f := range p.all("form") {
		if attr(f, "action") != action {
			continue
		}
		v := url.Values{}
		for _, in := range (&page{Doc: f}).all("input") {
			v.Set(attr(in, "name"), attr(in, "value"))
		}
		for k, val := range set {
			v.Set(k, val)
		}
		return v
	}
	t.Fatalf("no form posting to %s", action)
	return nil
}

// edit posts the entity page's form to action and follows the redirect
// to the page with its notice; it returns the change made.
func (e *env) edit(name, action string, set map[string]string) (*page, int64) {
	e.t.Helper()
	p := e.get("/ui/entity?name=" + url.QueryEscape(name))
	r := e.post(action, form(e.t, p, action, set))
	if r.Status != http.StatusSeeOther {
		e.t.Fatalf("%s: %d %s", action, r.Status, r.Body)
	}
	loc := r.Header.Get("Location")
	u, _ := url.Parse(loc)
	done, err := strconv.ParseInt(u.Query().Get("done"), 10, 64)
	if !strings.HasPrefix(loc, "/ui/entity?name="+url.QueryEscape(name)+"&done=") || err != nil {
		e.t.Fatalf("%s sent to %q", action, loc)
	}
	after := e.get(loc)
	if got := texts(after, "done"); !cmp.Equal(got, []string{strconv.FormatInt(done, 10)}) {
		e.t.Errorf("%s: notice shows change %q, want %d", action, got, done)
	}
	return after, done
}

// lastChange is the store's newest change.
func (e *env) lastChange() entity.Change {
	e.t.Helper()
	cs, err := e.st.ChangeLog(context.Background(), store.ChangeFilter{Limit: 1})
	if err != nil || len(cs) != 1 {
		e.t.Fatalf("last change: %v %v", cs, err)
	}
	return cs[0]
}

func TestEveryEditWorksAndIsRecordedAsTheToken(t *testing.T) {
	e := newEnv(t, true)
	datacenter(e)
	e.write(func(tx *store.Tx) error {
		for _, n := range []entity.NewEntity{{Name: "s9", Driver: "server"}, {Name: "r2", Driver: "rack"}, {Name: "db", Driver: "pool"}} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	})
	if _, _, err := e.st.CreateToken(context.Background(), entity.Caller{Actor: "test"}, "alice", entity.RoleWrite); err != nil {
		t.Fatal(err)
	}
	secret, _, err := e.st.CreateToken(context.Background(), entity.Caller{Actor: "test"}, "alice2", entity.RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	e.login(secret)
	get := func(name string) *entity.Entity {
		t.Helper()
		x, err := e.st.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	values := func(name, key string) []string {
		var out []string
		for _, a := range get(name).Attrs {
			if a.Key == key {
				out = append(out, a.Value.Text+"/"+string(a.Value.Type))
			}
		}
		return out
	}
	steps := []struct {
		action string
		set    map[string]string
		op     string
		check  func() bool
	}{
		{"/ui/entity/attr/add", map[string]string{"key": "memory_gb", "value": "64"}, entity.OpAttrAdd,
			func() bool { return cmp.Equal(values("s9", "memory_gb"), []string{"64/int"}) }},
		{"/ui/entity/attr/add", map[string]string{"key": "tag", "value": "a"}, entity.OpAttrAdd,
			func() bool { return cmp.Equal(values("s9", "tag"), []string{"a/string"}) }},
		{"/ui/entity/attr/set", map[string]string{"key": "tag", "value": "true", "type": "bool"}, entity.OpAttrSet,
			func() bool { return cmp.Equal(values("s9", "tag"), []string{"true/bool"}) }},
		{"/ui/entity/attr/delete", map[string]string{"key": "memory_gb", "value": "64"}, entity.OpAttrDel,
			func() bool { return values("s9", "memory_gb") == nil }},
		{"/ui/entity/rack", map[string]string{"rack": "r2"}, entity.OpAllocate, func() bool {
			p := get("s9").Parents
			return len(p) == 1 && p[0].Name == "r2" && p[0].Position != nil && *p[0].Position == 1
		}},
		{"/ui/entity/address", map[string]string{"block": "net1", "interface": "eth1"}, entity.OpAllocate, func() bool {
			a, err := e.st.AllocationsAt(context.Background(), "s9", 0)
			return err == nil && len(a) == 1 && a[0].Address == "10.0.0.2" && a[0].Interface == "eth1"
		}},
		{"/ui/entity/pool/join", map[string]string{"pool": "db"}, entity.OpInsert, func() bool { return len(get("s9").Parents) == 2 }},
		{"/ui/entity/pool/leave", map[string]string{"pool": "db"}, entity.OpRemove, func() bool { return len(get("s9").Parents) == 1 }},
	}
	for _, s := range steps {
		page, done := e.edit("s9", s.action, s.set)
		if !s.check() {
			t.Errorf("%s %v: not done", s.action, s.set)
		}
		c := e.lastChange()
		if c.Number != done || c.Actor != "alice2" || c.Op != s.op {
			t.Errorf("%s: last change %d by %s (%s), want %d by alice2 (%s)", s.action, c.Number, c.Actor, c.Op, done, s.op)
		}
		// The change is in the entity's history, by the token's name.
		if actors := texts(page, "actor"); len(actors) == 0 || actors[0] != "alice2" {
			t.Errorf("%s: timeline actors %q", s.action, actors)
		}
	}
	// A position given is used.
	e.write(func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "s10", Driver: "server"}) })
	e.edit("s10", "/ui/entity/rack", map[string]string{"rack": "r2", "position": "20"})
	if p := get("s10").Parents; len(p) != 1 || *p[0].Position != 20 {
		t.Errorf("s10 at %v, want r2 U20", p)
	}
}

func TestEditsWithoutTokensAreAnonymous(t *testing.T) {
	e := newEnv(t, false)
	datacenter(e)
	e.edit("s1", "/ui/entity/attr/add", map[string]string{"key": "note", "value": "x"})
	if c := e.lastChange(); c.Actor != entity.DefaultActor || c.Op != entity.OpAttrAdd {
		t.Errorf("last change by %s (%s), want anonymous attr_add", c.Actor, c.Op)
	}
}

func TestBadEditsAreRefusedAndChangeNothing(t *testing.T) {
	e := newEnv(t, false)
	datacenter(e)
	p := e.get("/ui/entity?name=s1")
	before := e.lastChange().Number
	for _, c := range []struct {
		action string
		set    map[string]string
		status int
		says   string
	}{
		{"/ui/entity/attr/add", map[string]string{"key": "bad key", "value": "x"}, http.StatusBadRequest, "key"},
		{"/ui/entity/attr/add", map[string]string{"key": "memory_gb", "value": "lots"}, http.StatusBadRequest, "not an integer"},
		{"/ui/entity/attr/set", map[string]string{"key": "n", "value": "x", "type": "int"}, http.StatusBadRequest, "not an integer"},
		{"/ui/entity/attr/delete", map[string]string{"key": "nothere", "value": "x"}, http.StatusNotFound, "no attribute"},
		{"/ui/entity/rack", map[string]string{"rack": "r1", "position": "10"}, http.StatusConflict, ""},
		{"/ui/entity/rack", map[string]string{"rack": "r1", "position": "-1"}, http.StatusBadRequest, "position"},
		{"/ui/entity/rack", map[string]string{"rack": ""}, http.StatusBadRequest, "which rack"},
		{"/ui/entity/address", map[string]string{"block": "nowhere"}, http.StatusNotFound, "nowhere"},
		{"/ui/entity/address", map[string]string{"block": "net1", "address": "10.0.0.1"}, http.StatusConflict, ""},
		{"/ui/entity/pool/join", map[string]string{"pool": "r1"}, http.StatusBadRequest, "not a pool"},
		{"/ui/entity/pool/leave", map[string]string{"pool": "r1"}, http.StatusBadRequest, "not a member"},
		{"/ui/entity/pool/join", map[string]string{"version": "x", "pool": "web"}, http.StatusBadRequest, "version"},
		{"/ui/entity/pool/join", map[string]string{"name": "", "pool": "web"}, http.StatusBadRequest, "which entity"},
	} {
		r := e.post(c.action, form(t, p, c.action, c.set))
		if r.Status != c.status || len(r.byClass("problem")) != 1 || !strings.Contains(text(r.byClass("problem")[0]), c.says) {
			t.Errorf("%s %v: %d %q, want %d saying %q", c.action, c.set, r.Status, texts(r, "problem"), c.status, c.says)
		}
	}
	if after := e.lastChange().Number; after != before {
		t.Errorf("refused edits changed something: last change %d, was %d", after, before)
	}
}

func TestCSRFRefusalChangesNothing(t *testing.T) {
	e := newEnv(t, true)
	datacenter(e)
	e.login(e.admin)
	p := e.get("/ui/entity?name=s1")
	before := e.lastChange().Number
	for _, token := range []string{"", "forged", strings.Repeat("A", 43)} {
		f := form(t, p, "/ui/entity/attr/add", map[string]string{"key": "note", "value": "x", "csrf": token})
		if token == "" {
			f.Del("csrf")
		}
		if r := e.post("/ui/entity/attr/add", f); r.Status != http.StatusForbidden {
			t.Errorf("csrf %q: %d, want 403", token, r.Status)
		}
	}
	if after := e.lastChange().Number; after != before {
		t.Errorf("a refused form changed something: %d, was %d", after, before)
	}
}

func TestStaleFormIsRefusedAndShowsWhatChanged(t *testing.T) {
	e := newEnv(t, false)
	datacenter(e)
	p := e.get("/ui/entity?name=s1")
	// Someone else edits s1 after the page was drawn.
	e.write(func(tx *store.Tx) error {
		_, err := tx.AddAttr("s1", entity.Attr{Key: "note", Value: entity.String("meanwhile")})
		return err
	})
	before := e.lastChange()
	r := e.post("/ui/entity/attr/set", form(t, p, "/ui/entity/attr/add", map[string]string{"key": "status", "value": "broken"}))
	if r.Status != http.StatusPreconditionFailed {
		t.Fatalf("stale edit: %d %s", r.Status, r.Body)
	}
	if after := e.lastChange().Number; after != before.Number {
		t.Errorf("the stale edit changed something")
	}
	if got := texts(r, "after"); len(got) != 1 || !strings.Contains(got[0], "meanwhile") {
		t.Errorf("what changed since: %q, want the note", got)
	}
	if !strings.Contains(strings.Join(texts(r, "problem"), ""), "changed since you read it") {
		t.Errorf("no refusal message: %q", texts(r, "problem"))
	}
	if !hrefs(r)["/ui/entity?name=s1"] {
		t.Errorf("no link to the entity as it is now")
	}
}

func TestReadTokenIsOfferedNoEditAndRefused(t *testing.T) {
	e := newEnv(t, true)
	datacenter(e)
	e.login(e.admin)
	full := e.get("/ui/entity?name=s1")
	secret, _, err := e.st.CreateToken(context.Background(), entity.Caller{Actor: "test"}, "viewer", entity.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	e.login(secret)
	p := e.get("/ui/entity?name=s1")
	if p.Status != http.StatusOK {
		t.Fatalf("read token's page: %d", p.Status)
	}
	if n := len(postForms(p)); n != 0 {
		t.Errorf("%d edit forms offered to a read token", n)
	}
	before := e.lastChange().Number
	f := form(t, full, "/ui/entity/attr/add", map[string]string{"key": "note", "value": "x", "csrf": p.csrf(t)})
	if r := e.post("/ui/entity/attr/add", f); r.Status != http.StatusForbidden || !strings.Contains(strings.Join(texts(r, "problem"), ""), "read") {
		t.Errorf("a read token's hand-made edit: %d %q, want 403", r.Status, texts(r, "problem"))
	}
	if after := e.lastChange().Number; after != before {
		t.Errorf("a read token changed something")
	}
}

func TestHostileEntityPageIsText(t *testing.T) {
	e := newEnv(t, false)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	name := `"><svg/onload=alert(3)>`
	e.write(func(tx *store.Tx) error {
		if err := tx.Create(entity.NewEntity{Name: name, Driver: "server", Attrs: []entity.Attr{{Key: "status", Value: entity.String(evil)}}}); err != nil {
			return err
		}
		if err := tx.Create(entity.NewEntity{Name: "<b>pool</b>", Driver: "pool"}); err != nil {
			return err
		}
		_, err := tx.Insert("<b>pool</b>", name, entity.Placement{})
		return err
	})
	for _, path := range []string{"/ui/entity?name=" + url.QueryEscape(name), "/ui/changes", "/ui/changes?actor=" + url.QueryEscape(evil)} {
		p := e.get(path)
		if p.Status != http.StatusOK {
			t.Fatalf("%s: %d", path, p.Status)
		}
		if n := len(p.all("script")); n != 1 {
			t.Errorf("%s: %d script elements, want only the interface's own", path, n)
		}
		if len(p.all("img")) != 0 || len(p.all("svg")) != 0 || len(p.all("b")) != 0 {
			t.Errorf("%s: markup from the inventory became elements", path)
		}
	}
	p := e.get("/ui/entity?name=" + url.QueryEscape(name))
	if h := p.all("h1"); len(h) != 1 || text(h[0]) != name {
		t.Errorf("heading %q, want the name as text", text(h[0]))
	}
	if v := texts(p, "value"); len(v) != 1 || v[0] != strings.Join(strings.Fields(evil), " ") {
		t.Errorf("value %q, want it as text", v)
	}
}

func TestChangesPageFilters(t *testing.T) {
	e := newEnv(t, false)
	datacenter(e)
	if err := e.st.Update(context.Background(), "bob", func(tx *store.Tx) error {
		_, err := tx.AddAttr("r1", entity.Attr{Key: "asset", Value: entity.String("A-1")})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	all := e.get("/ui/changes")
	if all.Status != http.StatusOK {
		t.Fatalf("changes: %d %s", all.Status, all.Body)
	}
	n := len(all.byClass("change"))
	if n < 10 {
		t.Fatalf("%d changes listed", n)
	}
	nums := texts(all, "num")
	if nums[0] != "#"+strconv.FormatInt(e.lastChange().Number, 10) {
		t.Errorf("the newest change is not first: %q", nums[:2])
	}
	for _, c := range []struct {
		query    string
		subjects []string
		ops      []string
		actors   []string
	}{
		{"actor=bob", []string{"r1"}, []string{"attr_add"}, []string{"bob"}},
		{"entity=r1&op=attr_add", []string{"r1"}, []string{"attr_add"}, []string{"bob"}},
		{"entity=s1&op=attr_set", []string{"s1"}, []string{"attr_set"}, []string{"test"}},
		{"op=allocate", []string{"s1"}, []string{"allocate"}, []string{"test"}},
		{"actor=nobody", nil, nil, nil},
	} {
		p := e.get("/ui/changes?" + c.query)
		if p.Status != http.StatusOK {
			t.Fatalf("%s: %d", c.query, p.Status)
		}
		if diff := cmp.Diff(c.subjects, texts(p, "subject")); diff != "" {
			t.Errorf("%s: subjects (-want +got):\n%s", c.query, diff)
		}
		if diff := cmp.Diff(c.ops, texts(p, "op")); diff != "" {
			t.Errorf("%s: operations (-want +got):\n%s", c.query, diff)
		}
		if diff := cmp.Diff(c.actors, texts(p, "actor")); diff != "" {
			t.Errorf("%s: actors (-want +got):\n%s", c.query, diff)
		}
	}
	// Each change links to its entity as of it.
	bob := e.get("/ui/changes?actor=bob")
	want := "/ui/entity?name=r1&at=" + strconv.FormatInt(e.lastChange().Number, 10)
	if !hrefs(bob)[want] {
		t.Errorf("no link to %s", want)
	}
	// The entity filter finds it as the subject (dc1 took r1) and as the
	// peer (r1 took s1).
	if ops := texts(e.get("/ui/changes?entity=r1&op=insert"), "subject"); !cmp.Equal(ops, []string{"s1", "r1"}) {
		t.Errorf("r1's inserts as the peer: %q", ops)
	}
}

func TestChangesPagesWithOlder(t *testing.T) {
	e := newEnv(t, false)
	e.write(func(tx *store.Tx) error {
		for i := range 60 {
			if err := tx.Create(entity.NewEntity{Name: "n" + strconv.Itoa(i), Driver: "server"}); err != nil {
				return err
			}
		}
		return nil
	})
	first := e.get("/ui/changes")
	if n := len(first.byClass("change")); n != 50 {
		t.Fatalf("first page %d changes", n)
	}
	var older string
	for _, a := range first.all("a") {
		if attr(a, "rel") == "next" {
			older = attr(a, "href")
		}
	}
	second := e.get(older)
	nums := texts(second, "num")
	if len(nums) != 10 || nums[0] != "#10" || nums[9] != "#1" {
		t.Errorf("second page %q", nums)
	}
}
