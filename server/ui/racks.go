package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"unicode/utf8"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// The elevation's geometry, in SVG user units: a rack is a column of unit
// numbers, then the rack's body; each unit is unitH tall, the top unit at
// the top (U1 at the bottom, as a real rack is numbered).
const (
	unitH    = 18
	numW     = 30
	bodyW    = 210
	rackPad  = 4
	labelMax = 28 // runes of a device's name that fit the body at 11px
)

// statuses are the device statuses the legend names, each with its colour
// (a class s-NAME); any other status, or none, is drawn as "other".
var statuses = []string{"allocated", "spare", "unallocated", "broken", "repair", "maintenance", "provisioning", "other"}

// rackView is one rack drawn: the SVG's size, its unit numbers, its free
// units and its devices, each with its place computed here so that the
// template only writes numbers.
type rackView struct {
	Name          string
	Units, Free   int64
	Width, Height int
	// NumX is where the unit numbers end (they are right-aligned).
	NumX      int
	Nums      []unitNum
	FreeUnits []freeUnit
	Devices   []deviceBox
	Unplaced  []unplaced
	// Parent is the rack's physical container (its row), if any.
	Parent string
}

type unitNum struct {
	Y    int
	Unit int64
}

type freeUnit struct {
	X, Y, W, H int
	Unit       int64
}

// deviceBox is a placed device: a box from its top unit down to its base.
type deviceBox struct {
	Name, Label, Title, Status string
	X, Y, W, H, TextX, TextY   int
	Base, Height               int64
}

type unplaced struct {
	Name, Driver, Status string
}

// unitY is where unit u's top edge is drawn in a rack of units.
func unitY(units, u int64) int { return rackPad + int(units-u)*unitH }

// statusOf is the status class of an entity: its status attribute when
// the legend names it, else "other".
func statusOf(e *entity.Entity) (class, text string) {
	if e != nil {
		for _, a := range e.Attrs {
			if a.Key == "status" {
				text = a.Value.Text
				break
			}
		}
	}
	for _, s := range statuses {
		if s == text {
			return s, text
		}
	}
	return "other", text
}

// firstAttr is the first value of key, or "".
func firstAttr(e *entity.Entity, key string) string {
	if e != nil {
		for _, a := range e.Attrs {
			if a.Key == key {
				return a.Value.Text
			}
		}
	}
	return ""
}

// truncate shortens s to at most n runes, ending with an ellipsis when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// drawRacks reads the elevations of racks, which stand in parent, and
// the status and model of the devices in them (one read for all), in one
// snapshot, and lays each out.
func drawRacks(v *store.View, racks []string, parent string) ([]rackView, error) {
	els := make([]*entity.Elevation, 0, len(racks))
	var names []string
	for _, r := range racks {
		el, err := v.Elevation(r)
		if err != nil {
			return nil, err
		}
		els = append(els, el)
		seen := map[string]bool{}
		for _, u := range el.Rows {
			if u.Device != "" && !seen[u.Device] {
				seen[u.Device] = true
				names = append(names, u.Device)
			}
		}
		names = append(names, el.Unplaced...)
	}
	ents, err := v.GetBrief(names, []string{"status", "model"})
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*entity.Entity, len(ents))
	for _, e := range ents {
		byName[e.Name] = e
	}
	out := make([]rackView, 0, len(els))
	for _, el := range els {
		rv := layout(el, byName)
		rv.Parent = parent
		out = append(out, rv)
	}
	return out, nil
}

// layout draws an elevation: a box per device spanning exactly its units,
// a free box per free unit, the unit numbers at the side.
func layout(el *entity.Elevation, byName map[string]*entity.Entity) rackView {
	rv := rackView{Name: el.Rack, Units: el.Units, Free: el.Free, Width: numW + bodyW + rackPad, NumX: numW - 4,
		Height: 2*rackPad + int(el.Units)*unitH}
	for _, u := range el.Rows {
		y := unitY(el.Units, u.Unit)
		rv.Nums = append(rv.Nums, unitNum{Y: y + unitH/2 + 4, Unit: u.Unit})
		if u.Free || u.Device == "" {
			rv.FreeUnits = append(rv.FreeUnits, freeUnit{X: numW, Y: y, W: bodyW, H: unitH, Unit: u.Unit})
			continue
		}
		top := u.Base + max(u.Height, 1) - 1
		if u.Unit != min(top, el.Units) {
			continue // the device's box is drawn from its top unit
		}
		h := u.Unit - u.Base + 1
		e := byName[u.Device]
		class, status := statusOf(e)
		what := u.Driver
		if m := firstAttr(e, "model"); m != "" {
			what = m + " (" + u.Driver + ")"
		}
		units := fmt.Sprintf("U%d", u.Base)
		if h > 1 {
			units = fmt.Sprintf("U%d-%d", u.Base, u.Unit)
		}
		if status == "" {
			status = "no status"
		}
		rv.Devices = append(rv.Devices, deviceBox{
			Name: u.Device, Label: truncate(u.Device, labelMax), Status: class,
			Title: u.Device + ": " + what + ", " + status + ", " + units,
			X:     numW, Y: y, W: bodyW, H: int(h) * unitH, TextX: numW + 6, TextY: y + int(h)*unitH/2 + 4,
			Base: u.Base, Height: h,
		})
	}
	for _, n := range el.Unplaced {
		e := byName[n]
		_, status := statusOf(e)
		d := ""
		if e != nil {
			d = e.Driver
		}
		rv.Unplaced = append(rv.Unplaced, unplaced{Name: n, Driver: d, Status: status})
	}
	return rv
}

// GET /ui/rack?name=RACK: the rack's elevation, front view.
func (u *UI) rack(w http.ResponseWriter, r *http.Request, v *viewer) error {
	name, err := nameParam(r.URL.Query(), "name", "rack")
	if err != nil {
		return err
	}
	var racks []rackView
	if err := u.st.View(r.Context(), func(tx *store.View) error {
		rack, err := tx.Get(name)
		if err != nil {
			return err
		}
		parent := ""
		for _, p := range rack.Parents {
			if p.Type == entity.Contains {
				parent = p.Name
			}
		}
		racks, err = drawRacks(tx, []string{rack.Name}, parent)
		return err
	}); err != nil {
		return err
	}
	u.render(w, r, http.StatusOK, "rack", v, map[string]any{"Title": racks[0].Name, "Rack": racks[0], "Statuses": statuses})
	return nil
}

// GET /ui/row?name=ROW: the racks in a row (or any place) side by side,
// in name order.
func (u *UI) row(w http.ResponseWriter, r *http.Request, v *viewer) error {
	name, err := nameParam(r.URL.Query(), "name", "row")
	if err != nil {
		return err
	}
	after := r.URL.Query().Get("after")
	var racks []rackView
	total, next := 0, ""
	if err := u.st.View(r.Context(), func(tx *store.View) error {
		kids, err := tx.Sites(name)
		if err != nil {
			return err
		}
		var names []string
		for _, k := range kids {
			if k.Rack {
				total++
				if k.Name > after {
					names = append(names, k.Name)
				}
			}
		}
		if total == 0 {
			return entity.Errorf(entity.KindNotFound, "%s holds no racks", name)
		}
		slices.Sort(names)
		if len(names) > maxRowRacks {
			names = names[:maxRowRacks]
			next = rowURL(name) + "&after=" + url.QueryEscape(names[len(names)-1])
		}
		racks, err = drawRacks(tx, names, name)
		return err
	}); err != nil {
		return err
	}
	u.render(w, r, http.StatusOK, "row", v, map[string]any{"Title": name, "Name": name, "Racks": racks, "Statuses": statuses,
		"Total": total, "Next": next})
	return nil
}

// maxRowRacks is how many racks a row page draws side by side; a place
// holding more pages through them (?after=), so that one page never
// draws a whole datacenter.
const maxRowRacks = 48
