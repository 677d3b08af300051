package store

import (
	"fmt"

	"github.com/clusto/clusto/entity"
)

// AllocateNames creates Count entities named by a name manager (driver
// namemanager: `basename`, `digits`, `next`): basename followed by the next
// number zero-padded to digits (server0001, server0002, ...). Numbers are
// never reused; a name that already exists is skipped, not overwritten; past
// the digit count is `exhausted`. It returns the names created.
func (tx *Tx) AllocateNames(req entity.NameRequest) ([]string, error) {
	if req.Count == 0 {
		req.Count = 1
	}
	if req.Count < 0 || req.Count > entity.MaxNameCount {
		return nil, entity.Errorf(entity.KindInvalid, "count %d must be between 1 and %d", req.Count, entity.MaxNameCount)
	}
	m, err := tx.row(req.Manager)
	if err != nil {
		return nil, err
	}
	if m.driver != "namemanager" {
		return nil, entity.Errorf(entity.KindInvalid, "%s is a %s, not a namemanager", m.name, m.driver)
	}
	base, err := tx.stringAttr(m.id, "basename")
	if err != nil {
		return nil, err
	}
	if base == "" {
		base = m.name
	}
	digits, ok, err := tx.intAttr(m.id, "digits")
	if err != nil {
		return nil, err
	}
	if !ok {
		digits = 4
	}
	if digits < 1 || digits > 18 {
		return nil, entity.Errorf(entity.KindInvalid, "name manager %s: digits %d must be 1-18", m.name, digits)
	}
	next, ok, err := tx.intAttr(m.id, "next")
	if err != nil {
		return nil, err
	}
	if !ok {
		next = 1
	}
	limit := int64(1)
	for i := int64(0); i < digits; i++ {
		limit *= 10
	}
	var names []string
	for len(names) < req.Count {
		if next >= limit {
			return nil, entity.Errorf(entity.KindConflict, "name manager %s is exhausted: %s%0*d would need more than %d digits", m.name, base, int(digits), next, digits).
				WithCode(entity.ReasonExhausted).With("created", len(names))
		}
		name := fmt.Sprintf("%s%0*d", base, int(digits), next)
		next++
		if _, err := tx.row(name); err == nil {
			continue // taken by hand: skip it, never overwrite
		} else if !entity.IsKind(err, entity.KindNotFound) {
			return nil, err
		}
		if err := tx.Create(entity.NewEntity{Name: name, Driver: req.Driver, Attrs: req.Attrs}); err != nil {
			return nil, fmt.Errorf("creating %s: %w", name, err)
		}
		names = append(names, name)
	}
	if _, err := tx.SetAttr(m.name, entity.AttrSelector{Key: "next"}, []entity.Value{entity.Int(next)}); err != nil {
		return nil, err
	}
	return names, nil
}
