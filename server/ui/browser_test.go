package ui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invfile"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/query"
)

// The browser tests drive the interface in a real headless Chromium
// (Debian's chromium package) through chromedp, against the real server
// on loopback over the demo inventory. Without a browser they skip, saying
// so; CI installs one (.ci/run), so there they always run. Screenshots go
// to $UI_SCREENSHOTS when set (docs/ui.md shows the current ones), else
// to the test's temporary directory.

// chromium finds a browser, or "".
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium tab for a test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	e    *env
	shot string
}

// newBrowser starts Chromium (or skips the test) over an env holding the
// demo inventory.
func newBrowser(t *testing.T, tokens bool) *browser {
	t.Helper()
	bin := chromium()
	if bin == "" {
		t.Skip("no Chromium found (apt-get install -y chromium, or set CHROMIUM): the browser tests need a real browser")
	}
	if testing.Short() {
		t.Skip("browser tests are not run with -short")
	}
	e := newEnv(t, tokens)
	loadDemo(t, e.st)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(cancelC)
	// The first Do starts the browser and binds its life to ctx: no
	// timeout there; the steps get one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	dir := os.Getenv("UI_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	return &browser{t: t, ctx: sctx, e: e, shot: dir}
}

// loadDemo applies examples/demo.yaml, the inventory `make run` seeds.
func loadDemo(t *testing.T, st *store.Store) {
	t.Helper()
	data, err := os.ReadFile("../../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := invfile.Parse("demo.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plan, err := invfile.MakePlan(ctx, st, doc, invfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(ctx, st, "demo", store.BatchOptions{NoResults: true}); err != nil {
		t.Fatal(err)
	}
}

// do runs steps, failing the test with what was being done.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text is the text of the first element sel selects.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// location is the page's URL.
func (b *browser) location() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// screenshot saves the whole page as NAME.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// login goes to the interface, is sent to the login page, and logs in
// with the env's admin token.
func (b *browser) login() {
	b.t.Helper()
	b.do("open the interface", chromedp.Navigate(b.e.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	if loc := b.location(); !strings.Contains(loc, "/ui/login") {
		b.t.Fatalf("without a session the interface is at %s, not the login", loc)
	}
	b.screenshot("login")
	b.do("log in",
		chromedp.SendKeys(chromedp.CSS("#token"), b.e.admin),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#q")),
	)
	if who := b.text(".who"); !strings.Contains(who, "root") {
		b.t.Fatalf("logged in as %q, want root", who)
	}
}

// TestBrowserLoginAndSearch: log in with a token, search, see the
// results; search with a syntax error and see the caret under the column.
func TestBrowserLoginAndSearch(t *testing.T) {
	b := newBrowser(t, true)
	b.login()
	b.do("search",
		chromedp.SendKeys(chromedp.CSS("#q"), "driver:server and attr:status,spare"),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS("table.results")),
	)
	if s := b.text(".summary"); !strings.Contains(s, "match") {
		t.Fatalf("summary %q", s)
	}
	// The table shows what the query language finds in the store.
	want, err := query.Run(b.t.Context(), b.e.st.Reader(), "driver:server and attr:status,spare", query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.results tbody tr").length`))
	if err != nil || rows != len(want.Results) || rows == 0 {
		t.Fatalf("%d rows in the results, the store finds %d (%v)", rows, len(want.Results), err)
	}
	b.screenshot("search")
	b.do("a query that does not parse",
		chromedp.Navigate(b.e.ts.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "driver:server and"),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS("pre.caret")),
	)
	caret, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS("pre.caret")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "driver:server and\n                 ^\n"; caret != want {
		t.Errorf("caret %q, want %q", caret, want)
	}
	b.screenshot("syntax-error")
}

// TestBrowserEditHistoryPastAndStale: open a server, add an attribute
// with the form and see it in the history; view the server as of an older
// change (marked as the past, without forms); and send an edit from a
// page that went stale meanwhile, and be shown what changed instead.
func TestBrowserEditHistoryPastAndStale(t *testing.T) {
	b := newBrowser(t, true)
	b.login()
	entityPage := b.e.ts.URL + "/ui/entity?name=s0001"
	b.do("open s0001", chromedp.Navigate(entityPage), chromedp.WaitVisible(chromedp.CSS(".attr-form")))
	b.screenshot("entity")
	b.do("add an attribute",
		chromedp.SendKeys(chromedp.CSS(`.attr-form input[name="key"]`), "note"),
		chromedp.SendKeys(chromedp.CSS(`.attr-form input[name="value"]`), "racked by the browser test"),
		chromedp.Submit(chromedp.CSS(`.attr-form input[name="key"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if notice := b.text(".notice"); !strings.Contains(notice, "change") {
		t.Fatalf("after the edit: %q", notice)
	}
	if tl := b.text(".timeline"); !strings.Contains(tl, "racked by the browser test") {
		t.Fatalf("the history does not show the new value: %q", tl)
	}
	e, err := b.e.st.Get(b.t.Context(), "s0001")
	if err != nil {
		t.Fatal(err)
	}
	var noted bool
	for _, a := range e.Attrs {
		noted = noted || (a.Key == "note" && a.Value.Text == "racked by the browser test")
	}
	if !noted {
		t.Fatalf("the store has no note on s0001: %+v", e.Attrs)
	}

	// The oldest change's "as of this change" link: the past, no forms.
	links, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("a.asof")].map(a => a.href)`))
	if err != nil || len(links) < 2 {
		t.Fatalf("as-of links %v %v", links, err)
	}
	b.do("view s0001 as of an older change", chromedp.Navigate(links[len(links)-1]), chromedp.WaitVisible(chromedp.CSS(".past")))
	if past := b.text(".past"); !strings.Contains(past, "as it was just after change") {
		t.Fatalf("past banner %q", past)
	}
	forms, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("form.edit").length`))
	if err != nil || forms != 0 {
		t.Fatalf("%d edit forms on a page of the past (%v)", forms, err)
	}
	if attrs := b.text("table.attrs"); strings.Contains(attrs, "racked by the browser test") {
		t.Fatalf("the page of the past shows a value set later: %q", attrs)
	}
	b.screenshot("entity-past")

	// A stale page: the server changes behind the browser's back.
	b.do("open s0001 again", chromedp.Navigate(entityPage), chromedp.WaitVisible(chromedp.CSS(".attr-form")))
	b.e.write(func(tx *store.Tx) error {
		_, err := tx.SetAttr("s0001", entity.AttrSelector{Key: "status"}, []entity.Value{entity.String("repair")})
		return err
	})
	b.do("edit from the stale page",
		chromedp.SendKeys(chromedp.CSS(`.attr-form input[name="key"]`), "note2"),
		chromedp.SendKeys(chromedp.CSS(`.attr-form input[name="value"]`), "too late"),
		chromedp.Submit(chromedp.CSS(`.attr-form input[name="key"]`)),
		// The answer is another page: the entity page's form goes.
		chromedp.WaitNotPresent(chromedp.CSS(".attr-form")),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	)
	if h := b.text("h1"); !strings.Contains(h, "changed since you looked") {
		t.Fatalf("a stale edit shows %q", h)
	}
	if tl := b.text(".timeline"); !strings.Contains(tl, "repair") {
		t.Fatalf("the stale page does not show what changed: %q", tl)
	}
	b.screenshot("stale")
	e, err = b.e.st.Get(b.t.Context(), "s0001")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range e.Attrs {
		if a.Key == "note2" {
			t.Fatalf("the stale edit was stored")
		}
	}
}

// TestBrowserRackAndSites: open a rack, find each placed device drawn
// once with its hover title, click one and land on its page; open the
// sites tree and a datacenter in place.
func TestBrowserRackAndSites(t *testing.T) {
	b := newBrowser(t, true)
	b.login()
	b.do("open rack101", chromedp.Navigate(b.e.ts.URL+"/ui/rack?name=rack101"), chromedp.WaitVisible(chromedp.CSS("svg a.device")))
	el, err := b.e.st.Get(b.t.Context(), "rack101")
	if err != nil {
		t.Fatal(err)
	}
	placed := 0
	for _, c := range el.Children {
		if c.Type == entity.Contains && c.Position != nil {
			placed++
		}
	}
	drawn, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg a.device").length`))
	if err != nil || drawn != placed || placed == 0 {
		t.Fatalf("%d devices drawn, %d placed in rack101 (%v)", drawn, placed, err)
	}
	title, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(`svg a.device[href$="name=s0001"] title`)))
	if err != nil || !strings.Contains(title, "unallocated") {
		t.Fatalf("s0001's hover title %q (%v), want its status", title, err)
	}
	b.screenshot("rack")
	b.do("click s0001",
		chromedp.Click(chromedp.CSS(`svg a.device[href$="name=s0001"] rect`)),
		chromedp.WaitVisible(chromedp.CSS(".attr-form")),
	)
	if loc := b.location(); !strings.HasSuffix(loc, "/ui/entity?name=s0001") {
		t.Fatalf("the click opened %s", loc)
	}
	if h := b.text("h1"); h != "s0001" {
		t.Fatalf("the device's page is titled %q", h)
	}

	b.do("open the sites tree", chromedp.Navigate(b.e.ts.URL+"/ui/sites"), chromedp.WaitVisible(chromedp.CSS(".tree")))
	before := b.location()
	b.do("open sfo1 in place",
		chromedp.Click(chromedp.CSS(`.tree a[data-fragment][href$="open=sfo1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.tree a[aria-expanded="true"]`)),
	)
	if b.location() != before {
		t.Fatalf("opening a place loaded another page: %s", b.location())
	}
	if tree := b.text(".tree"); !strings.Contains(tree, "sfo1-room1") {
		t.Fatalf("the opened place does not show its children: %q", tree)
	}
	b.screenshot("sites")
}

// TestBrowserPagesFitAPhone: at a phone's width (390 CSS pixels) no page
// is wider than the screen: wide tables scroll inside their own box, and
// nothing else makes the page scroll sideways.
func TestBrowserPagesFitAPhone(t *testing.T) {
	b := newBrowser(t, false)
	for _, p := range []string{"/ui/entity?name=s0001", "/ui/?q=driver%3Aserver", "/ui/rack?name=rack101",
		"/ui/row?name=sfo1-row1", "/ui/sites", "/ui/changes", "/ui/block?name=rack101-net"} {
		b.do("open "+p, chromedp.EmulateViewport(390, 844), chromedp.Navigate(b.e.ts.URL+p), chromedp.WaitVisible(chromedp.CSS("main")))
		widths, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
		if err != nil {
			t.Fatal(err)
		}
		if widths[0] > widths[1] {
			t.Errorf("%s is %d pixels wide on a screen of %d", p, widths[0], widths[1])
		}
	}
}
