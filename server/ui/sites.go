package ui

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// siteNode is a place of the sites tree as drawn: its counts, and its
// children when it is open.
type siteNode struct {
	entity.Site
	// ID is the element that receives its children (hex of the name, so
	// any name makes a valid, unique id).
	ID   string
	Open bool
	Kids []siteNode
	// RowOf says some children are racks: the node has a row view.
	RowOf bool
}

func nodesOf(sites []entity.Site) []siteNode {
	out := make([]siteNode, len(sites))
	for i, s := range sites {
		out[i] = siteNode{Site: s, ID: "site-" + hex.EncodeToString([]byte(s.Name))}
	}
	return out
}

// hasRacks says some of the sites are racks.
func hasRacks(sites []entity.Site) bool {
	for _, s := range sites {
		if s.Rack {
			return true
		}
	}
	return false
}

// siteCache keeps levels of the tree until the next commit. A level
// walks every place under it down to its racks (the whole inventory for
// the tops: 2,326 racks on the 100k inventory, 20-50 ms even with what
// the racks hold kept by the store), and the tree is looked at far more
// often than it changes. The store's commit hook empties it after every
// commit that changes an entity, and after a drivers reload (which may
// change the units of racks); the generation, which the hook moves, keeps
// a read whose view began before a commit from being kept.
type siteCache struct {
	mu     sync.Mutex
	gen    uint64
	levels map[string][]entity.Site
}

// siteCacheMax bounds the levels kept.
const siteCacheMax = 512

// generation is taken before a view opens, for level.
func (c *siteCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// invalidate is the commit hook.
func (c *siteCache) invalidate([]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.levels = nil
}

// level is the children of parent ("" for the tops) in tx's snapshot, for
// a view opened at generation gen.
func (c *siteCache) level(tx *store.View, gen uint64, parent string) ([]entity.Site, error) {
	c.mu.Lock()
	if l, ok := c.levels[parent]; ok && c.gen == gen {
		c.mu.Unlock()
		return l, nil
	}
	c.mu.Unlock()
	l, err := tx.Sites(parent)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return l, nil
	}
	if c.levels == nil {
		c.levels = map[string][]entity.Site{}
	}
	if len(c.levels) < siteCacheMax {
		c.levels[parent] = l
	}
	return l, nil
}

// GET /ui/sites[?open=NAME][&fragment=1]: the containment tree, one level
// at a time. The page shows the tops (datacenters), with the path down to
// NAME open; with fragment=1 it answers only NAME's children, which the
// script puts under NAME in place.
func (u *UI) sites(w http.ResponseWriter, r *http.Request, v *viewer) error {
	q := r.URL.Query()
	open := strings.TrimSpace(q.Get("open"))
	if q.Get("fragment") != "" {
		if open == "" {
			return entity.Errorf(entity.KindInvalid, "open is missing: say whose children to show (?open=NAME&fragment=1)")
		}
		var kids []entity.Site
		gen := u.siteLevels.generation()
		if err := u.st.View(r.Context(), func(tx *store.View) error {
			var err error
			kids, err = u.siteLevels.level(tx, gen, open)
			return err
		}); err != nil {
			return err
		}
		node := siteNode{Site: entity.Site{Name: open}, Open: true, Kids: nodesOf(kids), RowOf: hasRacks(kids)}
		u.render(w, r, http.StatusOK, "_sites", v, map[string]any{"Node": node})
		return nil
	}
	// The path from the top down to open: each of its places is open.
	var path []string
	if open != "" {
		loc, err := u.st.Locate(r.Context(), open, 0)
		if err != nil {
			return err
		}
		path = loc.Path
	}
	isOpen := map[string]bool{}
	for _, p := range path {
		isOpen[p] = true
	}
	var tops []siteNode
	gen := u.siteLevels.generation()
	if err := u.st.View(r.Context(), func(tx *store.View) error {
		sites, err := u.siteLevels.level(tx, gen, "")
		if err != nil {
			return err
		}
		tops = nodesOf(sites)
		// Open level by level: only the places on the path are read.
		level := tops
		for len(level) > 0 {
			var next []siteNode
			for i := range level {
				n := &level[i]
				if !isOpen[n.Name] || n.Rack || !n.Children {
					continue
				}
				kids, err := u.siteLevels.level(tx, gen, n.Name)
				if err != nil {
					return err
				}
				n.Open, n.Kids, n.RowOf = true, nodesOf(kids), hasRacks(kids)
				next = n.Kids
				break
			}
			level = next
		}
		return nil
	}); err != nil {
		return err
	}
	u.render(w, r, http.StatusOK, "sites", v, map[string]any{"Title": "Sites", "Root": siteNode{Kids: tops}, "Open": open})
	return nil
}

// percent is part of whole in whole percent (0 of nothing).
func percent(part, whole int64) int64 {
	if whole <= 0 {
		return 0
	}
	return part * 100 / whole
}

// thousands writes n with thin separators every three digits: 100,148.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
