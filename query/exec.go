package query

import (
	"context"

	"github.com/clusto/clusto/entity/store"
)

// viewer is a Reader that can open a View (the store's Reader).
type viewer interface {
	View(ctx context.Context, fn func(*store.View) error) error
}

// Exec runs a compiled query: one page of matches and their total, read in
// one snapshot so that they agree: in a View opened for them when db can
// open one (the store's Reader can), else in whatever db is (a View, or a
// write transaction's Reader). (Run is Parse, Compile and Exec; callers
// that time the phases apart call them one by one.)
func (c *Compiled) Exec(ctx context.Context, db store.Reader) (*Result, error) {
	v, ok := db.(viewer)
	if !ok {
		return c.run(ctx, db)
	}
	var res *Result
	err := v.View(ctx, func(tx *store.View) error {
		var err error
		res, err = c.run(ctx, tx)
		return err
	})
	return res, err
}
