package ui

import (
	"math/big"
	"net/http"
	"net/url"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// blockPage is how many allocations a page of an IP block lists.
const blockPage = 100

// barW is the width of a block's use bar, in SVG user units: the bar's
// parts are drawn with width attributes (the CSP allows no inline style).
const barW = 1000

// GET /ui/block?name=BLOCK[&after=ADDRESS]: an IP block's size, use,
// children, next free address and a page of its allocations.
func (u *UI) block(w http.ResponseWriter, r *http.Request, v *viewer) error {
	name, err := nameParam(r.URL.Query(), "name", "IP block")
	if err != nil {
		return err
	}
	after := r.URL.Query().Get("after")
	var bs *entity.BlockStatus
	var next string
	var nextErr error
	if err := u.st.View(r.Context(), func(tx *store.View) error {
		var err error
		if bs, err = tx.BlockStatus(name, after, blockPage+1); err != nil {
			return err
		}
		next, nextErr = tx.NextFreeIP(name)
		if nextErr != nil && entity.KindOf(nextErr) != entity.KindConflict {
			return nextErr
		}
		return nil
	}); err != nil {
		return err
	}
	d := map[string]any{"Title": bs.Name, "B": bs, "NextFree": next, "After": after,
		"UsedW": share(big.NewInt(bs.Allocated), bs.Size), "ReservedW": share(bs.Reserved, bs.Size), "BarW": barW}
	d["ReservedX"] = d["UsedW"]
	if nextErr != nil {
		d["NextFreeNone"] = nextErr.Error()
	}
	// One more than a page was read: whether there is a next page.
	if len(bs.Allocs) > blockPage {
		bs.Allocs = bs.Allocs[:blockPage]
		d["Next"] = Prefix + "block?" + url.Values{"name": {bs.Name}, "after": {bs.Allocs[blockPage-1].Address}}.Encode()
	}
	u.render(w, r, http.StatusOK, "block", v, d)
	return nil
}

// share is part/whole of the bar's width, rounded down but at least 1
// when part is not zero, so that one address in a /8 is still seen.
func share(part, whole *big.Int) int64 {
	if part.Sign() <= 0 || whole.Sign() <= 0 {
		return 0
	}
	n := new(big.Int).Mul(part, big.NewInt(barW))
	n.Quo(n, whole)
	return max(n.Int64(), 1)
}
