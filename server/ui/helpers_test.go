package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
)

// env is a real store behind the real server (its gate, its routes, the
// interface mounted under /ui/) on a loopback httptest server, and a
// browser-like client with a cookie jar that does not follow redirects.
type env struct {
	t     *testing.T
	st    *store.Store
	ts    *httptest.Server
	c     *http.Client
	admin string // an admin token's secret, when the env has tokens
}

// newEnv opens an empty inventory. With tokens, it makes an admin token
// (the server then needs a login); without, the server serves anonymous
// loopback requests, as clustod does before its first token.
func newEnv(t *testing.T, tokens bool) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/inv.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st}
	if tokens {
		if e.admin, _, err = st.CreateToken(ctx, entity.Caller{Actor: "test"}, "root", entity.RoleAdmin); err != nil {
			t.Fatal(err)
		}
	}
	srv := server.New(st, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowAnonymous: true})
	e.ts = httptest.NewServer(srv)
	t.Cleanup(e.ts.Close)
	jar, _ := cookiejar.New(nil)
	e.c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

// page is a parsed answer.
type page struct {
	Status int
	Header http.Header
	Body   string
	Doc    *html.Node
}

// get fetches a path of the server.
func (e *env) get(path string) *page {
	e.t.Helper()
	res, err := e.c.Get(e.ts.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.read(res)
}

// post sends a form, as a browser on the server's own page does (its
// Origin is the server's).
func (e *env) post(path string, form url.Values) *page {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.ts.URL)
	res, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.read(res)
}

func (e *env) read(res *http.Response) *page {
	e.t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	p := &page{Status: res.StatusCode, Header: res.Header, Body: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		if p.Doc, err = html.Parse(strings.NewReader(p.Body)); err != nil {
			e.t.Fatalf("parse page: %v", err)
		}
	}
	return p
}

// login logs the client in with secret and fails unless it is sent on.
func (e *env) login(secret string) {
	e.t.Helper()
	p := e.post("/ui/login", url.Values{"token": {secret}, "next": {"/ui/"}})
	if p.Status != http.StatusSeeOther {
		e.t.Fatalf("login: %d %s", p.Status, p.Body)
	}
}

// write runs fn as one write.
func (e *env) write(fn func(tx *store.Tx) error) {
	e.t.Helper()
	if err := e.st.Update(context.Background(), "test", fn); err != nil {
		e.t.Fatal(err)
	}
}

// csrf is the CSRF token the page's forms carry.
func (p *page) csrf(t *testing.T) string {
	t.Helper()
	for _, n := range p.all("input") {
		if attr(n, "name") == "csrf" {
			return attr(n, "value")
		}
	}
	t.Fatalf("no csrf field in the page")
	return ""
}

// all is every element of tag in the page, in document order.
func (p *page) all(tag string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if p.Doc != nil {
		walk(p.Doc)
	}
	return out
}

// byClass is every element whose class list holds class.
func (p *page) byClass(class string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && hasClass(n, class) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if p.Doc != nil {
		walk(p.Doc)
	}
	return out
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// attr is an element's attribute ("" when absent).
func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// text is the text inside an element.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// hrefs is every link target of the page.
func hrefs(p *page) map[string]bool {
	out := map[string]bool{}
	for _, a := range p.all("a") {
		out[attr(a, "href")] = true
	}
	return out
}
