package ui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// rackOfServers makes rack r1 holding s1 and s2 (s1 in pool web), and a
// loose server s3.
func rackOfServers(e *env) {
	e.write(func(tx *store.Tx) error {
		for _, n := range []entity.NewEntity{
			{Name: "r1", Driver: "rack"},
			{Name: "web", Driver: "pool"},
			{Name: "s1", Driver: "server", Attrs: []entity.Attr{{Key: "status", Value: entity.String("spare")}, {Key: "serial", Value: entity.String("SN-0001")}}},
			{Name: "s2", Driver: "server", Attrs: []entity.Attr{{Key: "status", Value: entity.String("allocated")}}},
			{Name: "s3", Driver: "server"},
		} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		pos := int64(10)
		if _, err := tx.Insert("r1", "s1", entity.Placement{Position: &pos}); err != nil {
			return err
		}
		if _, err := tx.Insert("r1", "s2", entity.Placement{}); err != nil {
			return err
		}
		_, err := tx.Insert("web", "s1", entity.Placement{})
		return err
	})
}

// rows is the results table as text, cell by cell.
func rows(p *page) [][]string {
	var out [][]string
	for _, tr := range p.all("tr") {
		var row []string
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				row = append(row, strings.TrimSpace(text(c)))
			}
		}
		if row != nil {
			out = append(out, row)
		}
	}
	return out
}

func TestSearchShowsMatchesWhereTheyAreAndTheirGroups(t *testing.T) {
	e := newEnv(t, false)
	rackOfServers(e)
	p := e.get("/ui/?q=" + url.QueryEscape("driver:server") + "&cols=status,serial")
	if p.Status != http.StatusOK {
		t.Fatalf("search: %d %s", p.Status, p.Body)
	}
	want := [][]string{
		{"s1", "server", "r1 U10", "web", "spare", "SN-0001"},
		{"s2", "server", "r1", "", "allocated", ""},
		{"s3", "server", "", "", "", ""},
	}
	if diff := cmp.Diff(want, rows(p)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if !strings.Contains(p.Body, "<strong>3</strong> matches") {
		t.Errorf("no total of 3 in the page")
	}
	links := map[string]bool{}
	for _, a := range p.all("a") {
		links[attr(a, "href")] = true
	}
	for _, l := range []string{"/ui/entity?name=s1", "/ui/entity?name=r1", "/ui/entity?name=web", "/api/v1/query?q=driver%3Aserver"} {
		if !links[l] {
			t.Errorf("no link to %s", l)
		}
	}
	if cli := p.byClass("cli"); len(cli) != 1 || text(cli[0]) != "clusto query driver:server" {
		t.Errorf("command line %v", cli)
	}
}

// TestSearchPagesWithACursor: a search of more than a page links the
// next one, which continues where the first ended.
func TestSearchPagesWithACursor(t *testing.T) {
	e := newEnv(t, false)
	e.write(func(tx *store.Tx) error {
		for i := range 130 {
			if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("n%03d", i), Driver: "server"}); err != nil {
				return err
			}
		}
		return nil
	})
	first := e.get("/ui/?q=driver%3Aserver")
	if got := len(rows(first)); got != 100 {
		t.Fatalf("first page %d rows, want 100", got)
	}
	var next string
	for _, a := range first.all("a") {
		if attr(a, "rel") == "next" {
			next = attr(a, "href")
		}
	}
	if next == "" {
		t.Fatal("no link to the next page")
	}
	second := e.get(next)
	r := rows(second)
	if len(r) != 30 || r[0][0] != "n100" || r[29][0] != "n129" {
		t.Fatalf("second page: %d rows from %v", len(r), r[:1])
	}
}

// TestSearchSyntaxErrorShowsTheCaret: a query that does not parse is
// shown with the message and the caret the CLI prints.
func TestSearchSyntaxErrorShowsTheCaret(t *testing.T) {
	e := newEnv(t, false)
	q := "driver:server and"
	p := e.get("/ui/?q=" + url.QueryEscape(q))
	if p.Status != http.StatusBadRequest {
		t.Fatalf("status %d", p.Status)
	}
	carets := p.byClass("caret")
	if len(carets) != 1 {
		t.Fatalf("%d carets", len(carets))
	}
	if got, want := text(carets[0]), entity.Caret(q, 1, 18); got != want {
		t.Errorf("caret %q, want the CLI's %q", got, want)
	}
	if !strings.Contains(p.Body, "column 18") {
		t.Errorf("the message does not name the column")
	}
}

// TestLookupGoesToTheThing: a serial (or a name, an address, a MAC) in
// the search box opens what it names.
func TestLookupGoesToTheThing(t *testing.T) {
	e := newEnv(t, false)
	rackOfServers(e)
	e.write(func(tx *store.Tx) error {
		_, err := tx.SetAttr("s1", entity.AttrSelector{Key: "mac"}, []entity.Value{entity.String("00:1a:2b:3c:4d:5e")})
		return err
	})
	for _, term := range []string{"SN-0001", "s1", "00:1a:2b:3c:4d:5e", "001a.2b3c.4d5e"} {
		p := e.get("/ui/?q=" + url.QueryEscape(term))
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/entity?name=s1" {
			t.Errorf("%s: %d to %q, want 303 to s1", term, p.Status, p.Header.Get("Location"))
		}
	}
}

// TestHostileNamesAreText: a name and a value full of markup are shown as
// text; no element of theirs reaches the page.
func TestHostileNamesAreText(t *testing.T) {
	e := newEnv(t, false)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	e.write(func(tx *store.Tx) error {
		return tx.Create(entity.NewEntity{Name: `"><svg/onload=alert(3)>`, Driver: "server", Attrs: []entity.Attr{{Key: "status", Value: entity.String(evil)}}})
	})
	p := e.get("/ui/?q=driver%3Aserver")
	if n := len(p.all("script")); n != 1 {
		t.Errorf("%d script elements, want only the interface's own", n)
	}
	if len(p.all("img")) != 0 || len(p.all("svg")) != 0 {
		t.Errorf("markup from the inventory became elements")
	}
	if r := rows(p); len(r) != 1 || r[0][0] != `"><svg/onload=alert(3)>` || r[0][4] != evil {
		t.Errorf("rows %q: the name and value are not shown as text", r)
	}
}

// TestEveryAnswerCarriesTheSecurityHeaders: pages, errors and the login
// page forbid framing, sniffing and any script or style not the server's.
func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	e := newEnv(t, true)
	for _, path := range []string{"/ui/login", "/ui/", "/ui/nowhere", "/ui/static/style.css"} {
		p := e.get(path)
		csp := p.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %s", path, csp, want)
			}
		}
		if p.Header.Get("X-Content-Type-Options") != "nosniff" || p.Header.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", path, p.Header)
		}
	}
}

// TestLoginSessionAndLogout: with tokens, pages send to the login; a bad
// token is refused there; a good one opens a session that names the
// token; logout needs the form's CSRF token and ends the session; and a
// revoked token ends its sessions.
func TestLoginSessionAndLogout(t *testing.T) {
	e := newEnv(t, true)
	p := e.get("/ui/?q=driver%3Aserver")
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/ui/login?next=") {
		t.Fatalf("without a session: %d to %q", p.Status, p.Header.Get("Location"))
	}
	bad := e.post("/ui/login", url.Values{"token": {"clusto_wrong"}, "next": {"/ui/"}})
	if bad.Status != http.StatusUnauthorized || len(bad.byClass("problem")) != 1 {
		t.Fatalf("a bad token: %d", bad.Status)
	}
	// The session cookie is HttpOnly and SameSite=Strict.
	ok := e.post("/ui/login", url.Values{"token": {e.admin}, "next": {"https://evil.example/"}})
	if ok.Status != http.StatusSeeOther || ok.Header.Get("Location") != "/ui/" {
		t.Fatalf("login: %d to %q (a next page elsewhere must not be followed)", ok.Status, ok.Header.Get("Location"))
	}
	cookie := ok.Header.Get("Set-Cookie")
	if !strings.Contains(cookie, "clusto_session=clsess_") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Errorf("session cookie %q", cookie)
	}
	home := e.get("/ui/")
	if home.Status != http.StatusOK || !strings.Contains(text(home.byClass("who")[0]), "root") {
		t.Fatalf("logged in: %d", home.Status)
	}
	if r := e.post("/ui/logout", url.Values{"csrf": {"forged"}}); r.Status != http.StatusForbidden {
		t.Errorf("logout with a forged CSRF token: %d, want 403", r.Status)
	}
	if r := e.post("/ui/logout", url.Values{"csrf": {home.csrf(t)}}); r.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := e.get("/ui/"); r.Status != http.StatusSeeOther {
		t.Errorf("after logout: %d, want the login again", r.Status)
	}

	// Another token stays, so the server still needs a login.
	if _, _, err := e.st.CreateToken(t.Context(), entity.Caller{Actor: "test"}, "other", entity.RoleRead); err != nil {
		t.Fatal(err)
	}
	e.login(e.admin)
	if r := e.get("/ui/"); r.Status != http.StatusOK {
		t.Fatalf("logged in again: %d", r.Status)
	}
	if err := e.st.RevokeToken(t.Context(), entity.Caller{Actor: "test"}, "root"); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/ui/"); r.Status != http.StatusSeeOther {
		t.Errorf("after the token's revocation: %d, want the login again", r.Status)
	}
}

// TestSessionCookieIsSecureBehindTLS: behind a reverse proxy that
// terminates TLS (and says so), the session cookie is Secure; over plain
// HTTP it cannot be.
func TestSessionCookieIsSecureBehindTLS(t *testing.T) {
	e := newEnv(t, true)
	for _, proto := range []string{"", "https"} {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/ui/login", strings.NewReader(url.Values{"token": {e.admin}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.ts.URL)
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		res, err := e.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		cookie := res.Header.Get("Set-Cookie")
		if secure := strings.Contains(cookie, "; Secure"); secure != (proto == "https") || !strings.Contains(cookie, "clusto_session=") {
			t.Errorf("X-Forwarded-Proto %q: cookie %q", proto, cookie)
		}
	}
}

// TestFormsFromAnotherSiteAreRefused: the server's origin rules apply to
// the interface: a form posted from another site's page is refused
// before it is read.
func TestFormsFromAnotherSiteAreRefused(t *testing.T) {
	e := newEnv(t, true)
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/ui/login", strings.NewReader(url.Values{"token": {e.admin}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	res, err := e.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || res.Header.Get("Set-Cookie") != "" {
		t.Errorf("login posted from another site: %d, cookie %q", res.StatusCode, res.Header.Get("Set-Cookie"))
	}
}

// TestOversizedFormsAreRefused: a form past the interface's bound is
// refused (413) before it is read, and changes nothing.
func TestOversizedFormsAreRefused(t *testing.T) {
	e := newEnv(t, false)
	rackOfServers(e)
	before := e.get("/ui/entity?name=s1")
	big := strings.Repeat("x", 100<<10)
	for _, path := range []string{"/ui/login", "/ui/entity/attr/add"} {
		p := e.post(path, url.Values{"csrf": {before.csrf(t)}, "name": {"s1"}, "version": {"1"}, "key": {"note"}, "value": {big}, "token": {big}})
		if p.Status != http.StatusRequestEntityTooLarge || len(p.byClass("problem")) != 1 {
			t.Errorf("%s with a 100 KiB field: %d", path, p.Status)
		}
	}
	if s1, err := e.st.Get(t.Context(), "s1"); err != nil || len(s1.Attrs) != 2 {
		t.Fatalf("s1 after refused forms: %+v %v", s1, err)
	}
}
