package store

// Attribute operations inside a write transaction: add, set, claim and
// delete values, each one change, normalised against the driver's specs.

import (
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

func attrIdentity(a entity.Attr) string {
	n := "-"
	if a.Number != nil {
		n = fmt.Sprint(*a.Number)
	}
	return a.Key + "\x00" + a.Subkey + "\x00" + n + "\x00" + a.Value.Text
}

// normalize validates an attribute against the driver's declared keys and
// converts its value to the declared type (a string "42" for an int key).
func (tx *Tx) normalize(d *drivers.Driver, a entity.Attr) (entity.Attr, error) {
	if err := entity.ValidateKey("key", a.Key); err != nil {
		return a, err
	}
	if a.Subkey != "" {
		if err := entity.ValidateKey("subkey", a.Subkey); err != nil {
			return a, err
		}
	}
	if a.Number != nil && *a.Number < 0 {
		return a, entity.Errorf(entity.KindInvalid, "attribute %s: number must not be negative", a.Key)
	}
	if a.Value.Type == "" {
		a.Value.Type = entity.TypeString
	}
	a.From = ""
	canon, err := entity.ParseValue(a.Value.Type, a.Value.Text)
	if err != nil {
		return a, entity.Errorf(entity.KindInvalid, "attribute %s: %v", a.Key, err)
	}
	a.Value = canon
	spec, ok := d.Attrs[a.Key]
	if !ok {
		return a, nil
	}
	want := entity.ValueType(spec.Type)
	if spec.Type == drivers.TypeCIDR {
		want = entity.TypeString
	}
	if a.Value.Type != want {
		if a.Value.Type != entity.TypeString && !(a.Value.Type == entity.TypeInt && want == entity.TypeString) {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s of a %s must be %s, not %s", a.Key, d.Name, spec.Type, a.Value.Type)
		}
		v, err := entity.ParseValue(want, a.Value.Text)
		if err != nil {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s of a %s must be %s: %v", a.Key, d.Name, spec.Type, err.(*entity.Error).Message)
		}
		a.Value = v
	}
	if spec.Type == drivers.TypeCIDR {
		p, err := netip.ParsePrefix(strings.TrimSpace(a.Value.Text))
		if err != nil {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s: %q is not a network in CIDR form (10.0.3.0/24, 2001:db8::/64)", a.Key, a.Value.Text)
		}
		if p.Masked() != p {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s: %s has host bits set; the network is %s", a.Key, p, p.Masked())
		}
		if p, err = canonicalPrefix(p); err != nil {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s: %v", a.Key, err)
		}
		a.Value = entity.String(p.String())
	}
	if spec.Min != nil {
		if i, ok := a.Value.Int64(); ok && i < *spec.Min {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s of a %s must be at least %d, not %d", a.Key, d.Name, *spec.Min, i)
		}
	}
	return a, nil
}

func (tx *Tx) insertAttr(entityID int64, a entity.Attr, cid int64) error {
	return tx.insertAttrs(entityID, []entity.Attr{a}, cid)
}

// attrInsertChunk is how many attribute rows one INSERT carries: a server
// is created with half a dozen attributes, and one statement for all of
// them costs little more than one for each.
const attrInsertChunk = 16

// attrInsertSQL[n] inserts n attribute rows.
var attrInsertSQL = func() (q [attrInsertChunk + 1]string) {
	for n := 1; n <= attrInsertChunk; n++ {
		q[n] = "INSERT INTO attrs(entity_id, key, subkey, number, type, value, num, ip, ref, since) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?),", n), ",")
	}
	return q
}()

// insertAttrs adds attribute rows for change cid.
func (tx *Tx) insertAttrs(entityID int64, attrs []entity.Attr, cid int64) error {
	tx.attrWritten(entityID, cid)
	const cols = 10
	args := make([]any, 0, cols*min(len(attrs), attrInsertChunk))
	flush := func(n int) error {
		if n == 0 {
			return nil
		}
		_, err := tx.exec("add attribute", attrInsertSQL[n], args...)
		args = args[:0]
		return err
	}
	n := 0
	for _, a := range attrs {
		if a.Key == "cidr" && tx.created[entityID] != cid {
			// The block may be in a cached list of child blocks with its
			// old prefix. (A block being created, by change cid, is in no
			// list.)
			tx.forgetBlocks()
		}
		var num, ip, ref any
		switch a.Value.Type {
		case entity.TypeInt:
			num, _ = a.Value.Int64()
		case entity.TypeIP:
			addr, _ := a.Value.Addr()
			b := addr.As16()
			ip = b[:]
		case entity.TypeRef:
			var id int64
			err := tx.queryRow("SELECT id FROM entities WHERE name = ? AND until IS NULL", a.Value.Text).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return entity.Errorf(entity.KindInvalid, "attribute %s refers to %q, which does not exist", a.Key, a.Value.Text)
			} else if err != nil {
				return entity.Internal("resolve reference", err)
			}
			ref = id
		}
		var number any
		if a.Number != nil {
			number = *a.Number
			// An explicit number moves the auto-numbering past it, so that
			// "next number" never hands out one already used.
			if _, err := tx.exec("number attribute", `INSERT INTO attr_numbers(entity_id, key, next) VALUES (?,?,?)
				ON CONFLICT(entity_id, key) DO UPDATE SET next = max(next, excluded.next)`, entityID, a.Key, *a.Number+1); err != nil {
				return err
			}
		}
		args = append(args, entityID, a.Key, a.Subkey, number, string(a.Value.Type), a.Value.Text, num, ip, ref, cid)
		if n++; n == attrInsertChunk {
			if err := flush(n); err != nil {
				return err
			}
			n = 0
		}
	}
	return flush(n)
}

// AddAttr appends one value to an entity's attributes. Adding a value that
// is already there (same key, subkey, number and value) is a conflict.
func (tx *Tx) AddAttr(name string, a entity.Attr) (entity.Attr, error) {
	return tx.addAttr(name, a, false)
}

// AddNumberedAttr appends a value under the next number of its key: 0, 1,
// 2, ... for each (entity, key), never reusing a number, even after deletes.
func (tx *Tx) AddNumberedAttr(name string, a entity.Attr) (entity.Attr, error) {
	return tx.addAttr(name, a, true)
}

func (tx *Tx) addAttr(name string, a entity.Attr, autoNumber bool) (entity.Attr, error) {
	r, err := tx.row(name)
	if err != nil {
		return a, err
	}
	d, err := tx.driver(r.driver)
	if err != nil {
		return a, err
	}
	if autoNumber {
		a.Number = nil
	}
	if a, err = tx.normalize(d, a); err != nil {
		return a, err
	}
	if err := tx.guardBlockAttr(r, a.Key); err != nil {
		return a, err
	}
	if autoNumber {
		var next int64
		if err := tx.queryRow(`INSERT INTO attr_numbers(entity_id, key, next) VALUES (?,?,1)
			ON CONFLICT(entity_id, key) DO UPDATE SET next = next + 1 RETURNING next - 1`, r.id, a.Key).Scan(&next); err != nil {
			return a, entity.Internal("number attribute", err)
		}
		a.Number = entity.N(next)
	} else {
		sub := a.Subkey
		v := a.Value.Text
		q, args := attrWhere(entity.AttrSelector{Key: a.Key, Subkey: &sub, Value: &v})
		if a.Number != nil {
			q += " AND number = ?"
			args = append(args, *a.Number)
		} else {
			q += " AND number IS NULL"
		}
		var one int
		err := tx.queryRow("SELECT 1 FROM attrs WHERE entity_id = ? AND until IS NULL AND "+q+" LIMIT 1", append([]any{r.id}, args...)...).Scan(&one)
		if err == nil {
			return a, entity.Errorf(entity.KindConflict, "%s already has %s", name, a)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return a, entity.Internal("add attribute", err)
		}
	}
	cid, err := tx.record(entity.OpAttrAdd, r, nil, nil, a)
	if err != nil {
		return a, err
	}
	if err := tx.insertAttr(r.id, a, cid); err != nil {
		return a, err
	}
	if err := tx.followHeight(r, a.Key, cid); err != nil {
		return a, err
	}
	return a, tx.bump(r, cid)
}

// selected returns the current values sel picks.
func (tx *Tx) selected(r *entRow, sel entity.AttrSelector) ([]entity.Attr, error) {
	all, err := tx.s.attrsOf(tx.ctx, cached{tx}, r.id, 0, sel.Key, sel.Subkey)
	if err != nil {
		return nil, err
	}
	var matched []entity.Attr
	for _, a := range all {
		if sel.Number != nil && (a.Number == nil || *a.Number != *sel.Number) {
			continue
		}
		if sel.Value != nil && a.Value.Text != *sel.Value {
			continue
		}
		matched = append(matched, a)
	}
	return matched, nil
}

// sameAttrs reports whether two lists hold the same values, in any order.
func sameAttrs(a, b []entity.Attr) bool {
	if len(a) != len(b) {
		return false
	}
	ids := func(l []entity.Attr) []string {
		out := make([]string, len(l))
		for i, x := range l {
			out[i] = attrIdentity(x) + "\x00" + string(x.Value.Type)
		}
		sort.Strings(out)
		return out
	}
	x, y := ids(a), ids(b)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// closeAttrs ends the current rows matching sel and returns what they held.
func (tx *Tx) closeAttrs(r *entRow, sel entity.AttrSelector, cid int64) ([]entity.Attr, error) {
	matched, err := tx.selected(r, sel)
	if err != nil {
		return nil, err
	}
	if len(matched) == 0 {
		return nil, nil
	}
	tx.attrWritten(r.id, cid)
	if sel.Key == "cidr" {
		tx.forgetBlocks()
	}
	q, args := attrWhere(sel)
	_, err = tx.exec("remove attribute", "UPDATE attrs SET until = ? WHERE entity_id = ? AND until IS NULL AND "+q, append([]any{cid, r.id}, args...)...)
	return matched, err
}

// SetAttr replaces every value selected by sel (its key, and subkey and
// number when given) with values, as one change.
func (tx *Tx) SetAttr(name string, sel entity.AttrSelector, values []entity.Value) ([]entity.Attr, error) {
	r, err := tx.row(name)
	if err != nil {
		return nil, err
	}
	after, err := tx.prepareSet(r, sel, values)
	if err != nil {
		return nil, err
	}
	// Setting exactly the values there are changes nothing: no change
	// is recorded and no version moves (Clusto's testSetAttrAlreadySet).
	if cur, err := tx.selected(r, sel); err != nil {
		return nil, err
	} else if sameAttrs(cur, after) {
		return after, nil
	}
	cid, err := tx.record(entity.OpAttrSet, r, nil, nil, after)
	if err != nil {
		return nil, err
	}
	before, err := tx.replaceAttrs(r, sel, after, cid)
	if err != nil {
		return nil, err
	}
	if err := tx.setBefore(cid, before); err != nil {
		return nil, err
	}
	if err := tx.followHeight(r, sel.Key, cid); err != nil {
		return nil, err
	}
	return after, tx.bump(r, cid)
}

// prepareSet validates the values that will replace those selected by sel.
func (tx *Tx) prepareSet(r *entRow, sel entity.AttrSelector, values []entity.Value) ([]entity.Attr, error) {
	if len(values) == 0 {
		return nil, entity.Errorf(entity.KindInvalid, "attr set %s needs at least one value (use attr del to remove a key)", sel.Key)
	}
	d, err := tx.driver(r.driver)
	if err != nil {
		return nil, err
	}
	if err := tx.guardBlockAttr(r, sel.Key); err != nil {
		return nil, err
	}
	var after []entity.Attr
	seen := map[string]bool{}
	for _, v := range values {
		a := entity.Attr{Key: sel.Key, Number: sel.Number, Value: v}
		if sel.Subkey != nil {
			a.Subkey = *sel.Subkey
		}
		if a, err = tx.normalize(d, a); err != nil {
			return nil, err
		}
		if seen[a.Value.Text] {
			return nil, entity.Errorf(entity.KindInvalid, "value %q is given twice for %s", a.Value.Text, sel.Key)
		}
		seen[a.Value.Text] = true
		after = append(after, a)
	}
	return after, nil
}

// replaceAttrs ends the values selected by sel and writes after, as part
// of change cid, returning the values it ended.
func (tx *Tx) replaceAttrs(r *entRow, sel entity.AttrSelector, after []entity.Attr, cid int64) ([]entity.Attr, error) {
	sel.Value = nil
	before, err := tx.closeAttrs(r, sel, cid)
	if err != nil {
		return nil, err
	}
	for _, a := range after {
		if err := tx.insertAttr(r.id, a, cid); err != nil {
			return nil, err
		}
	}
	return before, nil
}

// Claim records that an entity was handed out (by a query allocation) as
// one change, op allocate, and sets the given attributes, each replacing
// every value of its key. why is stored with the change (the query).
func (tx *Tx) Claim(name string, set []entity.Attr, why string) error {
	r, err := tx.row(name)
	if err != nil {
		return err
	}
	var after []entity.Attr
	for _, a := range set {
		vals, err := tx.prepareSet(r, entity.AttrSelector{Key: a.Key}, []entity.Value{a.Value})
		if err != nil {
			return err
		}
		after = append(after, vals...)
	}
	cid, err := tx.record(entity.OpAllocate, r, nil, nil, map[string]any{"query": why, "set": after})
	if err != nil {
		return err
	}
	var before []entity.Attr
	for _, a := range after {
		old, err := tx.replaceAttrs(r, entity.AttrSelector{Key: a.Key}, []entity.Attr{a}, cid)
		if err != nil {
			return err
		}
		before = append(before, old...)
	}
	if err := tx.setBefore(cid, map[string]any{"attrs": before}); err != nil {
		return err
	}
	for _, a := range after {
		if err := tx.followHeight(r, a.Key, cid); err != nil {
			return err
		}
	}
	return tx.bump(r, cid)
}

// DelAttr removes the values selected by sel; it is not_found when none match.
func (tx *Tx) DelAttr(name string, sel entity.AttrSelector) ([]entity.Attr, error) {
	if err := entity.ValidateKey("key", sel.Key); err != nil {
		return nil, err
	}
	r, err := tx.row(name)
	if err != nil {
		return nil, err
	}
	if err := tx.guardBlockAttr(r, sel.Key); err != nil {
		return nil, err
	}
	cid, err := tx.record(entity.OpAttrDel, r, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	removed, err := tx.closeAttrs(r, sel, cid)
	if err != nil {
		return nil, err
	}
	if len(removed) == 0 {
		return nil, entity.Errorf(entity.KindNotFound, "%s has no attribute %s", name, sel)
	}
	if err := tx.setBefore(cid, removed); err != nil {
		return nil, err
	}
	if err := tx.followHeight(r, sel.Key, cid); err != nil {
		return nil, err
	}
	return removed, tx.bump(r, cid)
}

// attrWhere is the SQL condition on attrs rows that sel selects, with its arguments.
func attrWhere(sel entity.AttrSelector) (string, []any) {
	q := "key = ?"
	args := []any{sel.Key}
	if sel.Subkey != nil {
		q += " AND subkey = ?"
		args = append(args, *sel.Subkey)
	}
	if sel.Number != nil {
		q += " AND number = ?"
		args = append(args, *sel.Number)
	}
	if sel.Value != nil {
		q += " AND value = ?"
		args = append(args, *sel.Value)
	}
	return q, args
}
