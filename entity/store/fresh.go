package store

import (
	"sort"

	"github.com/clusto/clusto/entity"
)

// Bulk loads (an inventory file, the generator, a batch) create an entity
// and then place it, cable it and add it to groups in the same
// transaction. Each of those writes first checks the entity's current
// state with a query: is it already in a rack, is this port taken, which
// pools is it in. For an entity created in this transaction the answers
// are known without asking: it started with nothing, and every write that
// gave it something went through this Tx. The tracker below records that
// knowledge; a write that takes something away (remove, unlink, delete) or
// changes attributes outside the create drops it, and the checks fall back
// to their queries. A port, unit or membership it knows to be taken is
// still looked up, so that the conflict names the occupant as it always
// has.

// freshEntity is what this transaction knows of an entity it created.
type freshEntity struct {
	// attrs are its attributes of consultedKeys while attrsKnown; an
	// attribute write after the create makes them unknown.
	attrs      []entity.Attr
	attrsKnown bool
	placed     bool             // contained in something
	holds      bool             // contains something
	hasMembers bool             // a group with members
	groups     smallSet[int64]  // groups it is a member of
	pools      []poolRef        // the pools among them, in the order joined
	links      smallSet[string] // its linked ports
	// occupied are the unit ranges taken inside it.
	occupied []unitRange
	// runs are the runs of allocated offsets of a block (ip_runs), in
	// order, while runsKnown.
	runs      []span
	runsKnown bool
	runsDirty bool // runs changed since ip_runs last had them
}

type unitRange struct{ first, last int64 }

// smallSet is a set kept as a list while it is small: most entities are
// in a few groups and have a few ports linked, and a map for each of the
// hundreds of thousands a bulk load creates would weigh more than the
// rest of what is known of them.
type smallSet[K comparable] struct {
	list []K
	m    map[K]bool // once the list would pass smallSetMax
}

const smallSetMax = 16

func (s *smallSet[K]) has(k K) bool {
	if s.m != nil {
		return s.m[k]
	}
	for _, x := range s.list {
		if x == k {
			return true
		}
	}
	return false
}

func (s *smallSet[K]) add(k K) {
	switch {
	case s.m != nil:
		s.m[k] = true
	case s.has(k):
	case len(s.list) < smallSetMax:
		s.list = append(s.list, k)
	default:
		s.m = make(map[K]bool, 2*smallSetMax)
		for _, x := range s.list {
			s.m[x] = true
		}
		s.m[k] = true
		s.list = nil
	}
}

type poolRef struct {
	id   int64
	name string
}

// freshOf returns the transaction's knowledge of entity id, or nil.
func (tx *Tx) freshOf(id int64) *freshEntity { return tx.fresh[id] }

// consultedKeys are the attributes whose values writes look up (intAttr,
// stringAttr): rack units and heights, a block's cidr and gateway, a name
// manager's settings, a pool's flags. Of a fresh entity's attributes only
// these are kept, and knownAttr answers for these alone: a bulk load
// creates hundreds of thousands of entities in one transaction, whose
// other attributes would otherwise stay in memory until it commits.
var consultedKeys = map[string]bool{
	"units": true, "height": true, "cidr": true, "gateway": true,
	"basename": true, "digits": true, "next": true, "exclusive": true, "unique": true,
}

func (tx *Tx) trackCreated(id int64, driver string, attrs []entity.Attr) {
	if tx.fresh == nil {
		tx.fresh = map[int64]*freshEntity{}
	}
	var kept []entity.Attr
	for _, a := range attrs {
		if consultedKeys[a.Key] {
			kept = append(kept, a)
		}
	}
	tx.fresh[id] = &freshEntity{attrs: kept, attrsKnown: true, runsKnown: driver == "ipblock"}
}

// attrWritten notes an attribute write to entity id by change cid; the
// attributes written by the create itself are the ones known.
func (tx *Tx) attrWritten(id, cid int64) {
	if f := tx.fresh[id]; f != nil && tx.created[id] != cid {
		f.attrsKnown = false
		f.attrs = nil
	}
}

// untrack forgets what is known of the given entities, writing out what
// was only kept here (a new block's runs).
func (tx *Tx) untrack(ids ...int64) error {
	for _, id := range ids {
		if f := tx.fresh[id]; f != nil {
			if err := tx.writeRuns(id, f); err != nil {
				return err
			}
			delete(tx.fresh, id)
		}
	}
	return nil
}

// untrackAll forgets everything: after a write whose effects on other
// entities are not worked out here (a cascading delete).
func (tx *Tx) untrackAll() error {
	if err := tx.writeAllRuns(); err != nil {
		return err
	}
	clear(tx.fresh)
	return nil
}

// writeRuns writes a new block's runs of allocated offsets to ip_runs.
// Allocations in a block created by this transaction change only the
// in-memory runs (addToRuns, removeFromRuns); the table gets them here,
// once, before commit or before the knowledge is dropped.
func (tx *Tx) writeRuns(blockID int64, f *freshEntity) error {
	if !f.runsDirty {
		return nil
	}
	if _, err := tx.exec("record allocation", "DELETE FROM ip_runs WHERE block_id = ?", blockID); err != nil {
		return err
	}
	for _, r := range f.runs {
		if _, err := tx.exec("record allocation", "INSERT INTO ip_runs(block_id, first, last) VALUES (?,?,?)", blockID, biased(r.first), biased(r.last)); err != nil {
			return err
		}
	}
	f.runsDirty = false
	return nil
}

// writeAllRuns writes the runs of every new block, in id order.
func (tx *Tx) writeAllRuns() error {
	var ids []int64
	for id, f := range tx.fresh {
		if f.runsDirty {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if err := tx.writeRuns(id, tx.fresh[id]); err != nil {
			return err
		}
	}
	return nil
}

// knownAttr returns the value of the last attribute with key (of type
// TypeInt when wantInt) of a fresh entity, mirroring the "latest row"
// queries of stringAttr and intAttr. known is false when the answer needs
// a query.
func (tx *Tx) knownAttr(id int64, key string, wantInt bool) (v entity.Value, found, known bool) {
	f := tx.fresh[id]
	if f == nil || !f.attrsKnown || !consultedKeys[key] {
		return entity.Value{}, false, false
	}
	for i := len(f.attrs) - 1; i >= 0; i-- {
		a := f.attrs[i]
		if a.Key != key || (wantInt && a.Value.Type != entity.TypeInt) {
			continue
		}
		return a.Value, true, true
	}
	return entity.Value{}, false, true
}

// knownRunsOf returns a fresh block's knowledge when its runs are known.
func (tx *Tx) knownRunsOf(blockID int64) *freshEntity {
	if f := tx.fresh[blockID]; f != nil && f.runsKnown {
		return f
	}
	return nil
}

// runContaining returns the last run starting at or before o, as the
// query in runAt does.
func runContaining(runs []span, o uint64) (span, bool) {
	i := sort.Search(len(runs), func(i int) bool { return runs[i].first > o })
	if i == 0 {
		return span{}, false
	}
	return runs[i-1], true
}

// withOffset returns runs with offset o (in no run) added, merging
// neighbours as addToRuns does in ip_runs.
func withOffset(runs []span, o uint64) []span {
	i := sort.Search(len(runs), func(i int) bool { return runs[i].first > o })
	left := i > 0 && o > 0 && runs[i-1].last == o-1
	right := i < len(runs) && o < ^uint64(0) && runs[i].first == o+1
	switch {
	case left && right:
		runs[i-1].last = runs[i].last
		return append(runs[:i], runs[i+1:]...)
	case left:
		runs[i-1].last = o
		return runs
	case right:
		runs[i].first = o
		return runs
	}
	runs = append(runs, span{})
	copy(runs[i+1:], runs[i:])
	runs[i] = span{o, o}
	return runs
}

// withoutOffset returns runs with offset o (in a run) taken out, splitting
// its run as removeFromRuns does in ip_runs.
func withoutOffset(runs []span, o uint64) []span {
	i := sort.Search(len(runs), func(i int) bool { return runs[i].first > o }) - 1
	if i < 0 || runs[i].last < o {
		return runs
	}
	s := runs[i]
	switch {
	case s.first == o && s.last == o:
		return append(runs[:i], runs[i+1:]...)
	case s.first == o:
		runs[i].first = o + 1
		return runs
	case s.last == o:
		runs[i].last = o - 1
		return runs
	}
	runs[i].last = o - 1
	runs = append(runs, span{})
	copy(runs[i+2:], runs[i+1:])
	runs[i+1] = span{o + 1, s.last}
	return runs
}

// unitsKnownFree reports whether units first..last of fresh entity
// parentID are known to be free: everything placed in it was placed by
// this transaction.
func (tx *Tx) unitsKnownFree(parentID, first, last int64) bool {
	f := tx.fresh[parentID]
	if f == nil {
		return false
	}
	for _, u := range f.occupied {
		if u.first <= last && u.last >= first {
			return false
		}
	}
	return true
}
