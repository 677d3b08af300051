package ui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// historyPage is how many changes the entity page's timeline shows at a
// time; changePage the change log's page.
const (
	historyPage = 25
	changePage  = 50
)

// attrRow is one attribute of the merged view as the page shows it: its
// own, or inherited From a container or group (nearest first); Shadowed
// when a nearer value of the same key and subkey hides it.
type attrRow struct {
	entity.Attr
	Inherited bool
	Shadowed  bool
}

// changeRow is a change as the timeline and the change log show it: its
// before and after as JSON text ("" for none) and the entity page as of
// the change.
type changeRow struct {
	entity.Change
	BeforeText, AfterText string
	At                    string
}

// asOf is the change a page is drawn as of (0: now), with its time.
type asOf struct {
	Change int64
	Time   time.Time
}

// GET /ui/entity?name=N[&at=C][&before=C][&done=C]: everything about one
// entity, now or just after change C; before pages the timeline, done
// names the change an edit just made.
func (u *UI) entity(w http.ResponseWriter, r *http.Request, v *viewer) error {
	q := r.URL.Query()
	name, err := nameParam(q, "name", "entity")
	if err != nil {
		return err
	}
	ctx := r.Context()
	at, err := u.changeParam(r, q, "at")
	if err != nil {
		return err
	}
	before, err := u.changeParam(r, q, "before")
	if err != nil {
		return err
	}
	e, err := u.st.GetMergedAt(ctx, name, at)
	if err != nil {
		return err
	}
	loc, err := u.st.Locate(ctx, name, at)
	if err != nil {
		return err
	}
	console, err := u.st.Upstream(ctx, name, "console", at)
	if err != nil {
		return err
	}
	power, err := u.st.Upstream(ctx, name, "power", at)
	if err != nil {
		return err
	}
	allocs, err := u.st.AllocationsAt(ctx, name, at)
	if err != nil {
		return err
	}
	// The timeline of a past page ends at its change.
	if at > 0 && (before == 0 || before > at+1) {
		before = at + 1
	}
	hist, err := u.st.ChangeLog(ctx, store.ChangeFilter{Entity: name, Before: before, Limit: historyPage})
	if err != nil {
		return err
	}
	d := map[string]any{
		"Title": name, "E": e, "Attrs": attrRows(e), "Crumbs": crumbs(loc.Path), "Console": console, "Power": power,
		"Allocs": allocs, "History": changeRows(hist, name), "At": at, "Edit": at == 0 && v.Role.Allows(entity.RoleWrite),
		"Pools": pools(e),
	}
	if len(hist) == historyPage {
		older := url.Values{"name": {name}, "before": {strconv.FormatInt(hist[len(hist)-1].Number, 10)}}
		if at > 0 {
			older.Set("at", strconv.FormatInt(at, 10))
		}
		d["Older"] = Prefix + "entity?" + older.Encode()
	}
	if at > 0 {
		c, err := u.change(r, at)
		if err != nil {
			return err
		}
		d["Past"] = asOf{Change: at, Time: c.Time}
	}
	if done, err := u.changeParam(r, q, "done"); err == nil && done > 0 && at == 0 {
		if c, err := u.change(r, done); err == nil {
			d["Done"] = changeRows([]entity.Change{c}, name)[0]
		}
	}
	u.render(w, r, http.StatusOK, "entity", v, d)
	return nil
}

// change reads change number n.
func (u *UI) change(r *http.Request, n int64) (entity.Change, error) {
	cs, err := u.st.ChangeLog(r.Context(), store.ChangeFilter{Before: n + 1, After: n - 1, Limit: 1})
	if err != nil {
		return entity.Change{}, err
	}
	if len(cs) == 0 {
		return entity.Change{}, entity.Errorf(entity.KindNotFound, "there is no change %d", n)
	}
	return cs[0], nil
}

// nameParam is the name of the what (an entity, a rack, ...) a page or a
// form names in parameter key, which must be given and valid.
func nameParam(q url.Values, key, what string) (string, error) {
	name := strings.TrimSpace(q.Get(key))
	if name == "" {
		return "", entity.Errorf(entity.KindInvalid, "name is missing: which %s? The address needs ?%s=NAME", what, key)
	}
	if err := entity.ValidateName(name); err != nil {
		return "", err
	}
	return name, nil
}

// changeParam reads a change number (0 when absent): a whole number, 1 or
// more, of a change that has happened.
func (u *UI) changeParam(r *http.Request, q url.Values, key string) (int64, error) {
	s := strings.TrimSpace(q.Get(key))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, entity.Errorf(entity.KindInvalid, "%s=%q must be a change number (1 or more)", key, s)
	}
	if err := u.st.CheckAt(r.Context(), n); err != nil {
		return 0, err
	}
	return n, nil
}

// attrRows is the merged view with each value's origin marked: its own
// values first, then inherited ones nearest first, where the first value
// of a key and subkey from the nearest entity hides farther ones.
func attrRows(e *entity.Entity) []attrRow {
	owner := map[string]string{}
	out := make([]attrRow, 0, len(e.Attrs))
	for _, a := range e.Attrs {
		k := a.Key + "\x00" + a.Subkey
		first, seen := owner[k]
		if !seen {
			owner[k] = a.From
		}
		out = append(out, attrRow{Attr: a, Inherited: a.From != e.Name, Shadowed: seen && first != a.From})
	}
	return out
}

// crumbs is the locate path outermost first (the path is innermost first,
// the entity itself at its head).
func crumbs(path []string) []string {
	out := make([]string, 0, len(path))
	for i := len(path) - 1; i >= 0; i-- {
		out = append(out, path[i])
	}
	return out
}

// pools are the groups the entity is a member of (what "leave" offers).
func pools(e *entity.Entity) []entity.Relation {
	var out []entity.Relation
	for _, p := range e.Parents {
		if p.Type == entity.Member {
			out = append(out, p)
		}
	}
	return out
}

// changeRows are changes as the pages show them. name, when given, is the
// entity's name now, which its page as of a change is asked by unless the
// change says it had another then.
func changeRows(cs []entity.Change, name string) []changeRow {
	out := make([]changeRow, len(cs))
	for i, c := range cs {
		out[i] = changeRow{Change: c, BeforeText: jsonText(c.Before), AfterText: jsonText(c.After), At: changeURL(c, name)}
	}
	return out
}

// changeURL is the page of the change's entity as it was just after it:
// by its new name after a rename, and just before a delete (after it there
// is nothing to show).
func changeURL(c entity.Change, name string) string {
	n := c.Entity
	if name != "" && (c.Peer == name || c.Entity == name) {
		n = name
	}
	switch c.Op {
	case entity.OpRename:
		var after struct{ Name string }
		if json.Unmarshal(c.After, &after) == nil && after.Name != "" {
			n = after.Name
		}
	case entity.OpDelete:
		if c.Number > 1 {
			return entityAt(n, c.Number-1)
		}
	}
	if n == "" {
		return ""
	}
	return entityAt(n, c.Number)
}

func jsonText(raw json.RawMessage) string {
	if s := string(raw); s != "null" && s != "" {
		return s
	}
	return ""
}

// thingURL is where a link to an entity goes: as of change at on a page of
// the past, else to a rack's or a block's own page, else to its entity page.
func thingURL(name, driver string, at int64) string {
	switch {
	case at > 0:
		return entityAt(name, at)
	case driver == "rack":
		return rackURL(name)
	case driver == "ipblock":
		return blockURL(name)
	}
	return entityURL(name)
}
