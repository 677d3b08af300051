package entity

// Bulk loads (an inventory file, the generator, a batch) create an entity
// and then place it, cable it and add it to groups in the same
// transaction. Each of those writes first checks the entity's current
// state with a query: is it already in a rack, is this port taken, which
// pools is it in. For an entity created in this transaction the answers
// are known without asking: it started with nothing, and every write that
// gave it something went through this Tx. The tracker below records that
// knowledge; a write that takes something away (remove, unlink, delete) or
// changes attributes outside the create drops it, and the checks fall back
// to their queries. It never answers "taken" on its own: a conflict is
// always confirmed by the query that names the occupant.

// freshEntity is what this transaction knows of an entity it created.
type freshEntity struct {
	createdBy int64 // the change that created it
	// attrs are all its attributes while attrsKnown; an attribute write
	// after the create makes them unknown.
	attrs      []Attr
	attrsKnown bool
	placed     bool            // contained in something
	holds      bool            // contains something
	hasMembers bool            // a group with members
	groups     map[int64]bool  // groups it is a member of
	pools      []poolRef       // the pools among them, in the order joined
	links      map[string]bool // its linked ports
}

type poolRef struct {
	id   int64
	name string
}

// freshOf returns the transaction's knowledge of entity id, or nil.
func (tx *Tx) freshOf(id int64) *freshEntity { return tx.fresh[id] }

func (tx *Tx) trackCreated(id, cid int64, attrs []Attr) {
	if tx.fresh == nil {
		tx.fresh = map[int64]*freshEntity{}
	}
	tx.fresh[id] = &freshEntity{createdBy: cid, attrs: attrs, attrsKnown: true}
}

// attrWritten notes an attribute write to entity id by change cid.
func (tx *Tx) attrWritten(id, cid int64) {
	if f := tx.fresh[id]; f != nil && f.createdBy != cid {
		f.attrsKnown = false
		f.attrs = nil
	}
}

// untrack forgets what is known of the given entities' connections.
func (tx *Tx) untrack(ids ...int64) {
	for _, id := range ids {
		delete(tx.fresh, id)
	}
}

// untrackAll forgets everything: after a write whose effects on other
// entities are not worked out here (a cascading delete).
func (tx *Tx) untrackAll() { clear(tx.fresh) }

// knownAttr returns the value of the last attribute with key (of type
// TypeInt when wantInt) of a fresh entity, mirroring the "latest row"
// queries of stringAttr and intAttr. known is false when the answer needs
// a query.
func (tx *Tx) knownAttr(id int64, key string, wantInt bool) (v Value, found, known bool) {
	f := tx.fresh[id]
	if f == nil || !f.attrsKnown {
		return Value{}, false, false
	}
	for i := len(f.attrs) - 1; i >= 0; i-- {
		a := f.attrs[i]
		if a.Key != key || (wantInt && a.Value.Type != TypeInt) {
			continue
		}
		return a.Value, true, true
	}
	return Value{}, false, true
}
