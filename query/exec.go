package query

import (
	"context"
	"database/sql"

	"github.com/clusto/clusto/entity"
)

// Exec runs a compiled query: one page of matches and their total, read in
// one read-only transaction when db can begin one. (Run is Parse, Compile
// and Exec; callers that time the phases apart call them one by one.)
func (c *Compiled) Exec(ctx context.Context, db Queryer) (*Result, error) {
	type beginner interface {
		BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	}
	if b, ok := db.(beginner); ok {
		tx, err := b.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, entity.Internal("run query", err)
		}
		defer tx.Rollback()
		return c.run(ctx, tx)
	}
	return c.run(ctx, db)
}
