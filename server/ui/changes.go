package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// ops are the operations the change log records, for its filter.
var ops = []string{entity.OpCreate, entity.OpDelete, entity.OpRename, entity.OpAttrAdd, entity.OpAttrSet, entity.OpAttrDel,
	entity.OpInsert, entity.OpRemove, entity.OpLink, entity.OpUnlink, entity.OpAllocate, entity.OpRelease}

// GET /ui/changes[?entity=N][&actor=A][&op=O][&before=C]: the change log,
// newest first, filtered, paged by before.
func (u *UI) changes(w http.ResponseWriter, r *http.Request, v *viewer) error {
	q := r.URL.Query()
	f := store.ChangeFilter{Entity: strings.TrimSpace(q.Get("entity")), Actor: strings.TrimSpace(q.Get("actor")),
		Op: strings.TrimSpace(q.Get("op")), Limit: changePage}
	if f.Entity != "" {
		if err := entity.ValidateName(f.Entity); err != nil {
			return err
		}
	}
	if f.Op != "" && !slices.Contains(ops, f.Op) {
		return entity.Errorf(entity.KindInvalid, "op=%q is not an operation of the change log (%s)", f.Op, strings.Join(ops, ", "))
	}
	var err error
	if f.Before, err = u.changeParam(r, q, "before"); err != nil {
		return err
	}
	cs, err := u.st.ChangeLog(r.Context(), f)
	if err != nil {
		return err
	}
	d := map[string]any{"Title": "Changes", "F": f, "Ops": ops, "Changes": changeRows(cs, "")}
	if len(cs) == changePage {
		older := url.Values{"before": {strconv.FormatInt(cs[len(cs)-1].Number, 10)}}
		for k, val := range map[string]string{"entity": f.Entity, "actor": f.Actor, "op": f.Op} {
			if val != "" {
				older.Set(k, val)
			}
		}
		d["Older"] = Prefix + "changes?" + older.Encode()
	}
	u.render(w, r, http.StatusOK, "changes", v, d)
	return nil
}
