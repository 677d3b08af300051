package ui_test

import (
	"fmt"
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

// The elevation's geometry as the page draws it (racks.go): unit u of a
// rack of n units has its top edge at pad + (n-u)*unitH.
const (
	unitH   = 18
	rackPad = 4
)

const hostile = `"><svg/onload=alert(1)>`

// smallSites builds dc1 > room1 > row1 > {rack1 (42U), rack2 (10U)} and
// an empty dc2:
//
//	rack1: router big at U1-2, server mid at U20-22 (height 3), switch top
//	       at U42, server loose without a position;
//	rack2: server s-top at U10 (its top unit), the hostile one at U1.
func smallSites(e *env) {
	str := func(k, v string) entity.Attr { return entity.Attr{Key: k, Value: entity.String(v)} }
	e.write(func(tx *store.Tx) error {
		for _, n := range []entity.NewEntity{
			{Name: "dc1", Driver: "datacenter"}, {Name: "dc2", Driver: "datacenter"},
			{Name: "room1", Driver: "room"}, {Name: "row1", Driver: "row"},
			{Name: "rack1", Driver: "rack"},
			{Name: "rack2", Driver: "rack", Attrs: []entity.Attr{{Key: "units", Value: entity.Int(10)}}},
			{Name: "big", Driver: "router", Attrs: []entity.Attr{str("status", "broken"), str("model", "MX204")}},
			{Name: "mid", Driver: "server", Attrs: []entity.Attr{str("status", "spare"), {Key: "height", Value: entity.Int(3)}}},
			{Name: "top", Driver: "switch", Attrs: []entity.Attr{str("model", "7050SX")}},
			{Name: "loose", Driver: "server", Attrs: []entity.Attr{str("status", "repair")}},
			{Name: "s-top", Driver: "server", Attrs: []entity.Attr{str("status", "allocated")}},
			{Name: hostile, Driver: "server", Attrs: []entity.Attr{str("status", "<b>bad</b><script>x()</script>"), str("model", "<i>m</i>")}},
		} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		at := func(u int64) entity.Placement { return entity.Placement{Position: &u} }
		for _, in := range []struct {
			parent, child string
			pl            entity.Placement
		}{
			{"dc1", "room1", entity.Placement{}}, {"room1", "row1", entity.Placement{}},
			{"row1", "rack2", entity.Placement{}}, {"row1", "rack1", entity.Placement{}},
			{"rack1", "big", at(1)}, {"rack1", "mid", at(20)}, {"rack1", "top", at(42)}, {"rack1", "loose", entity.Placement{}},
			{"rack2", "s-top", at(10)}, {"rack2", hostile, at(1)},
		} {
			if _, err := tx.Insert(in.parent, in.child, in.pl); err != nil {
				return fmt.Errorf("%s in %s: %w", in.child, in.parent, err)
			}
		}
		return nil
	})
}

// ok fetches path and fails the test unless it answers 200.
func (e *env) ok(path string) *page {
	e.t.Helper()
	p := e.get(path)
	if p.Status != http.StatusOK {
		e.t.Fatalf("%s: %d %s", path, p.Status, p.Body)
	}
	return p
}

// wantLinks fails the test for each of paths the page does not link to.
func wantLinks(t *testing.T, p *page, paths ...string) {
	t.Helper()
	links := hrefs(p)
	for _, l := range paths {
		if !links[l] {
			t.Errorf("no link to %s", l)
		}
	}
}

// problem is the text of the page's error messages.
func problem(p *page) string {
	var msg string
	for _, d := range p.byClass("problem") {
		msg += text(d)
	}
	return msg
}

// innerTexts is the text of every tag element inside each of nodes.
func innerTexts(nodes []*html.Node, tag string) []string {
	var out []string
	for _, n := range nodes {
		for _, c := range (&page{Doc: n}).all(tag) {
			out = append(out, text(c))
		}
	}
	return out
}

// box is a device as the elevation draws it.
type box struct {
	Name, Class string
	Y, Height   int
	Title       string
}

// devices is every device box of the page's elevations, in page order.
func devices(t *testing.T, p *page) []box {
	t.Helper()
	var out []box
	for _, a := range p.byClass("device") {
		if a.Data != "a" {
			t.Errorf("a device is a <%s>, not a link", a.Data)
			continue
		}
		b := box{Name: strings.TrimPrefix(attr(a, "href"), "/ui/entity?name="), Class: attr(a, "class")}
		b.Name, _ = url.QueryUnescape(b.Name)
		var rects int
		for c := a.FirstChild; c != nil; c = c.NextSibling {
			switch c.Data {
			case "rect":
				rects++
				b.Y, _ = strconv.Atoi(attr(c, "y"))
				b.Height, _ = strconv.Atoi(attr(c, "height"))
			case "title":
				b.Title = text(c)
			}
		}
		if rects != 1 {
			t.Errorf("device %s has %d rects", b.Name, rects)
		}
		out = append(out, b)
	}
	return out
}

// span is where a device from unit base of height h must be drawn in a
// rack of n units: from the top edge of its top unit, h units tall.
func span(n, base, h int) (y, height int) {
	return rackPad + (n-(base+h-1))*unitH, h * unitH
}

func TestRackElevationDrawsEachDeviceOverItsUnits(t *testing.T) {
	e := newEnv(t, false)
	smallSites(e)
	p := e.ok("/ui/rack?name=rack1")
	if n := len(p.all("svg")); n != 1 {
		t.Fatalf("%d svg elements, want 1", n)
	}
	y := func(base, h int) int { y, _ := span(42, base, h); return y }
	want := []box{
		{Name: "top", Class: "device s-other", Y: y(42, 1), Height: unitH, Title: "top: 7050SX (switch), no status, U42"},
		{Name: "mid", Class: "device s-spare", Y: y(20, 3), Height: 3 * unitH, Title: "mid: server, spare, U20-22"},
		{Name: "big", Class: "device s-broken", Y: y(1, 2), Height: 2 * unitH, Title: "big: MX204 (router), broken, U1-2"},
	}
	if diff := cmp.Diff(want, devices(t, p)); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
	// The top device starts at the top of the drawing, the bottom one
	// ends at the bottom edge of U1.
	if got := devices(t, p); len(got) == 3 {
		if got[0].Y != rackPad {
			t.Errorf("U42 drawn from y=%d, want %d", got[0].Y, rackPad)
		}
		if end := got[2].Y + got[2].Height; end != rackPad+42*unitH {
			t.Errorf("U1 ends at y=%d, want %d", end, rackPad+42*unitH)
		}
	}
	// Free units: 42 less 1+3+2 held, each drawn at its own place.
	free := p.byClass("unit")
	if len(free) != 36 {
		t.Errorf("%d free units drawn, want 36", len(free))
	}
	for _, f := range free {
		u, _ := strconv.Atoi(attr(f, "data-unit"))
		if got, want := attr(f, "y"), strconv.Itoa(rackPad+(42-u)*unitH); got != want {
			t.Errorf("free U%d at y=%s, want %s", u, got, want)
		}
		if u == 1 || u == 2 || u == 42 || (u >= 20 && u <= 22) {
			t.Errorf("U%d is drawn free but is held", u)
		}
	}
	// The unit numbers: 42 at the top down to 1.
	var nums []string
	for _, n := range p.byClass("num") {
		nums = append(nums, text(n))
	}
	if len(nums) != 42 || nums[0] != "42" || nums[41] != "1" {
		t.Errorf("unit numbers %v, want 42 down to 1", nums)
	}
	// The unplaced device is listed under the rack, linked.
	if diff := cmp.Diff([]string{"loose"}, innerTexts(p.byClass("unplaced"), "a")); diff != "" {
		t.Errorf("unplaced (-want +got):\n%s", diff)
	}
	// The legend names every status.
	legend := innerTexts(p.byClass("legend"), "li")
	if diff := cmp.Diff([]string{"allocated", "spare", "unallocated", "broken", "repair", "maintenance", "provisioning", "other"}, legend); diff != "" {
		t.Errorf("legend (-want +got):\n%s", diff)
	}
	wantLinks(t, p, "/ui/row?name=row1", "/ui/entity?name=rack1", "/ui/entity?name=big")
}

func TestRackElevationTopUnitOfASmallRackAndHostileNames(t *testing.T) {
	e := newEnv(t, false)
	smallSites(e)
	p := e.ok("/ui/rack?name=rack2")
	y10, _ := span(10, 10, 1)
	y1, _ := span(10, 1, 1)
	want := []box{
		{Name: "s-top", Class: "device s-allocated", Y: y10, Height: unitH, Title: "s-top: server, allocated, U10"},
		{Name: hostile, Class: "device s-other", Y: y1, Height: unitH, Title: hostile + ": <i>m</i> (server), <b>bad</b><script>x()</script>, U1"},
	}
	if diff := cmp.Diff(want, devices(t, p)); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
	// The markup in the name and the status is text: one svg (the
	// rack's), no script, no b or i element, no onload attribute.
	for tag, n := range map[string]int{"svg": 1, "script": 1, "b": 0, "i": 8} {
		// one script: the page's own ui.js; eight i: the legend's swatches
		if got := len(p.all(tag)); got != n {
			t.Errorf("%d <%s> elements, want %d", got, tag, n)
		}
	}
	for _, s := range p.all("script") {
		if attr(s, "src") != "/ui/static/ui.js" {
			t.Errorf("a script that is not the page's own: %v", s.Attr)
		}
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has an event handler %s=%q", n.Data, a.Key, a.Val)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.Doc)
	if diff := cmp.Diff([]string{"s-top", hostile}, innerTexts(p.byClass("device"), "text")); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

func TestRackNameTruncatedToFit(t *testing.T) {
	e := newEnv(t, false)
	long := "a-very-long-server-name-that-does-not-fit-the-box"
	e.write(func(tx *store.Tx) error {
		if err := tx.Create(entity.NewEntity{Name: "r", Driver: "rack"}); err != nil {
			return err
		}
		if err := tx.Create(entity.NewEntity{Name: long, Driver: "server"}); err != nil {
			return err
		}
		u := int64(5)
		_, err := tx.Insert("r", long, entity.Placement{Position: &u})
		return err
	})
	p := e.ok("/ui/rack?name=r")
	if diff := cmp.Diff([]string{long[:27] + "…"}, innerTexts(p.byClass("device"), "text")); diff != "" {
		t.Errorf("label (-want +got):\n%s", diff)
	}
	if got := devices(t, p); len(got) != 1 || !strings.HasPrefix(got[0].Title, long+":") {
		t.Errorf("the hover title does not hold the whole name: %+v", got)
	}
}

func TestRowDrawsItsRacksInNameOrder(t *testing.T) {
	e := newEnv(t, false)
	smallSites(e)
	p := e.ok("/ui/row?name=row1")
	var racks []string
	for _, s := range p.all("svg") {
		racks = append(racks, attr(s, "aria-label"))
	}
	if diff := cmp.Diff([]string{"Elevation of rack1", "Elevation of rack2"}, racks); diff != "" {
		t.Errorf("racks (-want +got):\n%s", diff)
	}
	if n := len(devices(t, p)); n != 5 {
		t.Errorf("%d devices drawn, want 5", n)
	}
}

// TestRowPagesThroughManyRacks: a place holding more racks than a page
// draws shows the first ones and a link that continues after them.
func TestRowPagesThroughManyRacks(t *testing.T) {
	e := newEnv(t, false)
	e.write(func(tx *store.Tx) error {
		if err := tx.Create(entity.NewEntity{Name: "bigrow", Driver: "row"}); err != nil {
			return err
		}
		for i := range 50 {
			n := fmt.Sprintf("r%02d", i)
			if err := tx.Create(entity.NewEntity{Name: n, Driver: "rack"}); err != nil {
				return err
			}
			if _, err := tx.Insert("bigrow", n, entity.Placement{}); err != nil {
				return err
			}
		}
		return nil
	})
	labels := func(p *page) []string {
		var out []string
		for _, s := range p.all("svg") {
			out = append(out, strings.TrimPrefix(attr(s, "aria-label"), "Elevation of "))
		}
		return out
	}
	first := e.ok("/ui/row?name=bigrow")
	got := labels(first)
	if len(got) != 48 || got[0] != "r00" || got[47] != "r47" {
		t.Fatalf("first page draws %d racks: %v", len(got), got)
	}
	var next string
	for _, a := range first.all("a") {
		if attr(a, "rel") == "next" {
			next = attr(a, "href")
		}
	}
	if next == "" {
		t.Fatal("no link to the next racks")
	}
	if diff := cmp.Diff([]string{"r48", "r49"}, labels(e.ok(next))); diff != "" {
		t.Errorf("second page (-want +got):\n%s", diff)
	}
}

func TestRackAndRowPagesRefuseBadNames(t *testing.T) {
	e := newEnv(t, false)
	smallSites(e)
	for _, c := range []struct {
		path   string
		status int
		says   string
	}{
		{"/ui/rack", http.StatusBadRequest, "name is missing"},
		{"/ui/rack?name=", http.StatusBadRequest, "name is missing"},
		{"/ui/rack?name=nosuch", http.StatusNotFound, "nosuch"},
		{"/ui/rack?name=dc1", http.StatusBadRequest, "no rack units"},
		{"/ui/rack?name=" + url.QueryEscape(hostile+"x"), http.StatusNotFound, hostile + "x"},
		{"/ui/row", http.StatusBadRequest, "name is missing"},
		{"/ui/row?name=nosuch", http.StatusNotFound, "nosuch"},
		{"/ui/row?name=dc2", http.StatusNotFound, "holds no racks"},
		{"/ui/block", http.StatusBadRequest, "name is missing"},
		{"/ui/block?name=nosuch", http.StatusNotFound, "nosuch"},
		{"/ui/block?name=rack1", http.StatusBadRequest, "rack1"},
		{"/ui/sites?open=nosuch", http.StatusNotFound, "nosuch"},
		{"/ui/sites?fragment=1", http.StatusBadRequest, "open is missing"},
	} {
		p := e.get(c.path)
		if p.Status != c.status {
			t.Errorf("%s: status %d, want %d", c.path, p.Status, c.status)
		}
		msg := problem(p)
		if !strings.Contains(msg, c.says) {
			t.Errorf("%s: message %q does not say %q", c.path, msg, c.says)
		}
		if len(p.all("svg")) != 0 {
			t.Errorf("%s: an svg in the error page", c.path)
		}
	}
}

// site is a node of the sites tree as shown.
type site struct {
	Name, Counts string
	Fragment     bool // opens in place
}

// sites is every node of the page, in page order.
func sites(p *page) []site {
	var out []site
	for _, li := range p.byClass("site") {
		s := site{Name: attr(li, "data-name")}
		for c := li.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && hasClass(c, "counts") {
				s.Counts = strings.Join(strings.Fields(text(c)), " ")
			}
			if c.Type == html.ElementNode && c.Data == "a" && attr(c, "data-fragment") != "" {
				s.Fragment = true
			}
		}
		out = append(out, s)
	}
	return out
}

func TestSitesTreeCountsRacksDevicesAndUnits(t *testing.T) {
	e := newEnv(t, false)
	smallSites(e)
	// rack1: 42U, 6 used (2+3+1), 4 devices (with the unplaced one);
	// rack2: 10U, 2 used, 2 devices.
	all := "2 racks · 6 devices · 8/52 U (15%) 15%"
	p := e.ok("/ui/sites")
	want := []site{{Name: "dc1", Counts: all, Fragment: true}, {Name: "dc2", Counts: "0 racks · 0 devices"}}
	if diff := cmp.Diff(want, sites(p)); diff != "" {
		t.Errorf("tops (-want +got):\n%s", diff)
	}
	// The full page with row1 open: its path open down to it.
	p = e.get("/ui/sites?open=row1")
	want = []site{
		{Name: "dc1", Counts: all},
		{Name: "room1", Counts: all},
		{Name: "row1", Counts: all},
		{Name: "rack1", Counts: "4 devices · 6/42 U (14%) 14%"},
		{Name: "rack2", Counts: "2 devices · 2/10 U (20%) 20%"},
		{Name: "dc2", Counts: "0 racks · 0 devices"},
	}
	if diff := cmp.Diff(want, sites(p)); diff != "" {
		t.Errorf("open row1 (-want +got):\n%s", diff)
	}
	wantLinks(t, p, "/ui/rack?name=rack1", "/ui/row?name=row1")
}

func TestSitesFragmentHoldsOnlyTheChildren(t *testing.T) {
	e := newEnv(t, false)
	smallSites(e)
	p := e.get("/ui/sites")
	var href, target string
	for _, a := range p.all("a") {
		if attr(a, "data-fragment") != "" && text(a) == "dc1" {
			href, target = attr(a, "href"), attr(a, "data-fragment")
		}
	}
	if href != "/ui/sites?open=dc1" {
		t.Fatalf("dc1 opens with %q", href)
	}
	holders := 0
	for _, n := range p.all("div") {
		if attr(n, "id") == target {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("%d elements with id %q, want 1", holders, target)
	}
	f := e.ok(href + "&fragment=1")
	if strings.Contains(f.Body, "<html") || strings.Contains(f.Body, "<header") || len(f.all("nav")) != 0 {
		t.Errorf("the fragment carries the layout:\n%s", f.Body)
	}
	want := []site{{Name: "room1", Counts: "2 racks · 6 devices · 8/52 U (15%) 15%", Fragment: true}}
	if diff := cmp.Diff(want, sites(f)); diff != "" {
		t.Errorf("fragment (-want +got):\n%s", diff)
	}
	// The next level down, again without a layout.
	f = e.get("/ui/sites?open=row1&fragment=1")
	var names []string
	for _, s := range sites(f) {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"rack1", "rack2"}, names); diff != "" {
		t.Errorf("row1's children (-want +got):\n%s", diff)
	}
}

func TestSitesSeeAChangeAtOnce(t *testing.T) {
	e := newEnv(t, false)
	smallSites(e)
	before := sites(e.get("/ui/sites"))[0].Counts
	e.write(func(tx *store.Tx) error {
		if err := tx.Create(entity.NewEntity{Name: "new", Driver: "server"}); err != nil {
			return err
		}
		u := int64(30)
		_, err := tx.Insert("rack1", "new", entity.Placement{Position: &u})
		return err
	})
	after := sites(e.get("/ui/sites"))[0].Counts
	if before == after || after != "2 racks · 7 devices · 9/52 U (17%) 17%" {
		t.Errorf("after a server is racked: %q (before %q)", after, before)
	}
}

func TestSitesTreeShowsHostileNamesAsText(t *testing.T) {
	e := newEnv(t, false)
	e.write(func(tx *store.Tx) error {
		if err := tx.Create(entity.NewEntity{Name: hostile, Driver: "datacenter"}); err != nil {
			return err
		}
		if err := tx.Create(entity.NewEntity{Name: "<script>r</script>", Driver: "rack"}); err != nil {
			return err
		}
		_, err := tx.Insert(hostile, "<script>r</script>", entity.Placement{})
		return err
	})
	for _, path := range []string{"/ui/sites", "/ui/sites?open=" + url.QueryEscape(hostile), "/ui/sites?fragment=1&open=" + url.QueryEscape(hostile)} {
		p := e.ok(path)
		scripts := 1 // the page's own
		if strings.Contains(path, "fragment") {
			scripts = 0
		}
		if n := len(p.all("svg")); n != 0 {
			t.Errorf("%s: %d svg elements from a name", path, n)
		}
		if n := len(p.all("script")); n != scripts {
			t.Errorf("%s: %d script elements, want %d", path, n, scripts)
		}
		var names []string
		for _, s := range sites(p) {
			names = append(names, s.Name)
		}
		want := []string{hostile}
		if strings.Contains(path, "open") {
			want = append(want, "<script>r</script>")
		}
		if strings.Contains(path, "fragment") {
			want = want[1:]
		}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("%s: nodes (-want +got):\n%s", path, diff)
		}
	}
}
