package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// An edit is a POST form of the entity page. Parsing the form gives the
// write; the write runs inside one transaction that first checks the
// entity is still at the version the page showed (the form's version
// field), so an edit made against a stale page changes nothing.
type edit func(r *http.Request, name string) (func(tx *store.Tx) error, error)

// editPage registers an edit at pattern: the CSRF token, a role that may
// write, the entity's name and version, then the write as the viewer's
// token; on success it sends the browser back to the entity page with the
// change it made (?done=N).
func (u *UI) editPage(pattern string, do edit) {
	u.page(pattern, func(w http.ResponseWriter, r *http.Request, v *viewer) error {
		if err := u.checkCSRF(r, v); err != nil {
			return err
		}
		if !v.Role.Allows(entity.RoleWrite) {
			return entity.Errorf(entity.KindForbidden, "%s has the role %s: edits need a token with the role write or admin", v.Name, v.Role)
		}
		name, err := nameParam(r.PostForm, "name", "entity")
		if err != nil {
			return err
		}
		vs := strings.TrimSpace(r.PostFormValue("version"))
		version, err := strconv.ParseInt(vs, 10, 64)
		if err != nil || version < 1 {
			return entity.Errorf(entity.KindInvalid, "the form's version=%q is not an entity version: reload the page and send it again", vs)
		}
		write, err := do(r, name)
		if err != nil {
			return err
		}
		var change int64
		err = u.st.Update(r.Context(), v.Name, func(tx *store.Tx) error {
			if err := tx.CheckVersion(name, version); err != nil {
				return err
			}
			if err := write(tx); err != nil {
				return err
			}
			var err error
			change, err = tx.LastChange()
			return err
		})
		if entity.KindOf(err) == entity.KindPrecondition {
			return u.stale(w, r, v, name, version, err)
		}
		if err != nil {
			return err
		}
		http.Redirect(w, r, entityURL(name)+"&done="+strconv.FormatInt(change, 10), http.StatusSeeOther)
		return nil
	})
}

// stale answers an edit made against an old version of the entity: the
// refusal, and what changed since that version (from its history).
func (u *UI) stale(w http.ResponseWriter, r *http.Request, v *viewer, name string, version int64, refusal error) error {
	status, e := u.opts.Explain(r, refusal)
	d := map[string]any{"Title": "Changed since you looked", "Name": name, "Version": version, "Error": e}
	end, ok, err := u.st.VersionEnd(r.Context(), name, version)
	if err != nil {
		return err
	}
	if ok {
		since, err := u.st.ChangeLog(r.Context(), store.ChangeFilter{Entity: name, After: end - 1, Limit: historyPage})
		if err != nil {
			return err
		}
		d["Since"] = changeRows(since, name)
	}
	u.render(w, r, status, "stale", v, d)
	return nil
}

// editRoutes lists the entity page's edits.
func (u *UI) editRoutes() {
	u.editPage("POST "+Prefix+"entity/attr/add", addAttr)
	u.editPage("POST "+Prefix+"entity/attr/set", setAttr)
	u.editPage("POST "+Prefix+"entity/attr/delete", deleteAttr)
	u.editPage("POST "+Prefix+"entity/rack", placeInRack)
	u.editPage("POST "+Prefix+"entity/address", allocateAddress)
	u.editPage("POST "+Prefix+"entity/pool/join", joinPool)
	u.editPage("POST "+Prefix+"entity/pool/leave", leavePool)
}

// formAttr is the attribute a form names: key, optional subkey, and a
// value of the type chosen ("" for the driver's declared type, else a
// string); the store checks and converts it.
func formAttr(r *http.Request) (entity.Attr, error) {
	a := entity.Attr{Key: strings.TrimSpace(r.PostFormValue("key")), Subkey: strings.TrimSpace(r.PostFormValue("subkey")),
		Value: entity.Value{Type: entity.ValueType(r.PostFormValue("type")), Text: r.PostFormValue("value")}}
	if err := entity.ValidateKey("key", a.Key); err != nil {
		return a, err
	}
	if a.Subkey != "" {
		if err := entity.ValidateKey("subkey", a.Subkey); err != nil {
			return a, err
		}
	}
	if a.Value.Type != "" {
		if _, err := entity.ParseValue(a.Value.Type, a.Value.Text); err != nil {
			return a, err
		}
	}
	return a, nil
}

// POST /ui/entity/attr/add: one more value of a key.
func addAttr(r *http.Request, name string) (func(tx *store.Tx) error, error) {
	a, err := formAttr(r)
	if err != nil {
		return nil, err
	}
	return func(tx *store.Tx) error { _, err := tx.AddAttr(name, a); return err }, nil
}

// POST /ui/entity/attr/set: the key (and subkey) has this one value.
func setAttr(r *http.Request, name string) (func(tx *store.Tx) error, error) {
	a, err := formAttr(r)
	if err != nil {
		return nil, err
	}
	sel := entity.AttrSelector{Key: a.Key, Subkey: &a.Subkey}
	return func(tx *store.Tx) error { _, err := tx.SetAttr(name, sel, []entity.Value{a.Value}); return err }, nil
}

// POST /ui/entity/attr/delete: one value (key, subkey, number and value,
// as the attribute's row names it).
func deleteAttr(r *http.Request, name string) (func(tx *store.Tx) error, error) {
	key, sub, value := r.PostFormValue("key"), r.PostFormValue("subkey"), r.PostFormValue("value")
	if err := entity.ValidateKey("key", key); err != nil {
		return nil, err
	}
	sel := entity.AttrSelector{Key: key, Subkey: &sub, Value: &value}
	if n := strings.TrimSpace(r.PostFormValue("number")); n != "" {
		num, err := strconv.ParseInt(n, 10, 64)
		if err != nil || num < 0 {
			return nil, entity.Errorf(entity.KindInvalid, "number=%q must be a whole number, 0 or more", n)
		}
		sel.Number = &num
	}
	return func(tx *store.Tx) error { _, err := tx.DelAttr(name, sel); return err }, nil
}

// POST /ui/entity/rack: into a rack at a position, or at the lowest free
// units of its height when the position is left empty.
func placeInRack(r *http.Request, name string) (func(tx *store.Tx) error, error) {
	rack := strings.TrimSpace(r.PostFormValue("rack"))
	if rack == "" {
		return nil, entity.Errorf(entity.KindInvalid, "which rack? Give its name")
	}
	if err := entity.ValidateName(rack); err != nil {
		return nil, entity.Errorf(entity.KindInvalid, "rack: %s", err.Error())
	}
	req := entity.RackRequest{Rack: rack, Entity: name}
	if p := strings.TrimSpace(r.PostFormValue("position")); p != "" {
		pos, err := strconv.ParseInt(p, 10, 64)
		if err != nil || pos < 1 {
			return nil, entity.Errorf(entity.KindInvalid, "position %q must be a unit number, 1 or more (1 is the bottom unit), or empty for the lowest free units", p)
		}
		req.Position = &pos
	}
	return func(tx *store.Tx) error { _, err := tx.AllocateRackUnits(req); return err }, nil
}

// POST /ui/entity/address: the next free address of a block (or the one
// asked for), for this entity, on an interface if one is given.
func allocateAddress(r *http.Request, name string) (func(tx *store.Tx) error, error) {
	block := strings.TrimSpace(r.PostFormValue("block"))
	if block == "" {
		return nil, entity.Errorf(entity.KindInvalid, "which block? Give the name of an IP block")
	}
	if err := entity.ValidateName(block); err != nil {
		return nil, entity.Errorf(entity.KindInvalid, "block: %s", err.Error())
	}
	req := entity.IPRequest{Block: block, Entity: name, Count: 1, Address: strings.TrimSpace(r.PostFormValue("address")),
		Interface: strings.TrimSpace(r.PostFormValue("interface"))}
	return func(tx *store.Tx) error { _, err := tx.AllocateIP(req); return err }, nil
}

// poolName is the group a pool form names.
func poolName(r *http.Request) (string, error) {
	p := strings.TrimSpace(r.PostFormValue("pool"))
	if p == "" {
		return "", entity.Errorf(entity.KindInvalid, "which pool? Give the name of a group")
	}
	if err := entity.ValidateName(p); err != nil {
		return "", entity.Errorf(entity.KindInvalid, "pool: %s", err.Error())
	}
	return p, nil
}

// POST /ui/entity/pool/join: a member of a group. Only a group: the same
// insert into anything else would move the entity physically.
func joinPool(r *http.Request, name string) (func(tx *store.Tx) error, error) {
	pool, err := poolName(r)
	if err != nil {
		return nil, err
	}
	return func(tx *store.Tx) error {
		g, err := tx.Get(pool)
		if err != nil {
			return err
		}
		if g.Kind != drivers.Group {
			return entity.Errorf(entity.KindInvalid, "%s is a %s, not a pool or other group", pool, g.Driver)
		}
		_, err = tx.Insert(pool, name, entity.Placement{})
		return err
	}, nil
}

// POST /ui/entity/pool/leave: no longer a member of a group.
func leavePool(r *http.Request, name string) (func(tx *store.Tx) error, error) {
	pool, err := poolName(r)
	if err != nil {
		return nil, err
	}
	return func(tx *store.Tx) error {
		e, err := tx.Get(name)
		if err != nil {
			return err
		}
		for _, p := range pools(e) {
			if p.Name == pool {
				return tx.Remove(pool, name)
			}
		}
		return entity.Errorf(entity.KindInvalid, "%s is not a member of %s", name, pool)
	}, nil
}
