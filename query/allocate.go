package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// AllocateRequest asks for Count entities matching Query, no two of which
// share an ancestor of driver Distinct (when given), and sets Set on each.
type AllocateRequest struct {
	Query    string
	Count    int
	Distinct string
	Set      []entity.Attr
}

// MaxAllocate bounds one query allocation.
const MaxAllocate = 1000

// Allocate picks and claims entities inside a write transaction, so that
// concurrent allocations see each other's claims and never hand out the
// same entity twice. The choice is deterministic: candidates are taken in
// name order, and with Distinct a candidate is taken only if no entity
// taken before it shares its nearest ancestor of that driver (candidates
// without such an ancestor are passed over). Since each candidate has one
// nearest ancestor, taking the first of each ancestor in name order finds
// the most that can be had. When fewer than Count can be found, nothing is
// changed and the error (conflict, code insufficient) says how many were
// available. Each entity taken is one change, op allocate.
func Allocate(tx *store.Tx, req AllocateRequest) ([]string, error) {
	if err := checkRequest(req, tx.Store().Drivers()); err != nil {
		return nil, err
	}
	// The candidates are read inside the transaction, through the store's
	// Reader: it sees the transaction's own claims so far, with what the
	// transaction holds in memory written first.
	rd, err := tx.Reader()
	if err != nil {
		return nil, err
	}
	_, c, err := compileForAllocation(req, rd)
	if err != nil {
		return nil, err
	}
	base, args := c.statement("SELECT e.id, e.name", false)
	picked, available, _, err := pick(tx.Context(), rd, base, args, req)
	if err != nil {
		return nil, err
	}
	if len(picked) < req.Count {
		what := "entities match"
		if req.Distinct != "" {
			what = "entities match, each under a different " + req.Distinct + ","
		}
		return nil, entity.Errorf(entity.KindConflict, "only %d %s %q; %d were asked for", available, what, req.Query, req.Count).
			WithCode(entity.ReasonInsufficient).With("available", available).With("requested", req.Count)
	}
	return picked, claim(tx, req, picked)
}

// checkRequest refuses a count out of bounds and an unknown distinct
// driver (reg nil: not checked).
func checkRequest(req AllocateRequest, reg *drivers.Registry) error {
	if req.Count < 1 || req.Count > MaxAllocate {
		return entity.Errorf(entity.KindInvalid, "count %d must be between 1 and %d", req.Count, MaxAllocate)
	}
	if req.Distinct != "" && reg != nil {
		if _, ok := reg.Lookup(req.Distinct); !ok {
			return entity.Errorf(entity.KindInvalid, "distinct: unknown driver %q (distinct names the driver of an ancestor, such as rack)", req.Distinct)
		}
	}
	return nil
}

// compileForAllocation compiles req's query in the name-order form
// (Options.nameScan), judging rarity with db (nil: the form always); it
// returns the parsed query too.
func compileForAllocation(req AllocateRequest, db store.Reader) (*Query, *Compiled, error) {
	q, err := Parse(req.Query)
	if err != nil {
		return nil, nil, err
	}
	c, err := Compile(q, Options{DB: db, nameScan: true})
	return q, c, err
}

// claim takes the picked entities for req, one change each.
func claim(tx *store.Tx, req AllocateRequest, picked []string) error {
	for _, name := range picked {
		if err := tx.Claim(name, req.Set, req.Query); err != nil {
			return err
		}
	}
	return nil
}

// Candidates reads, outside the writer, what an allocation of req would
// take now and slack more in the same order (name order, one per
// ancestor with Distinct), for AllocateFrom to take inside the writer: the
// walk to find them, most of an allocation's work, then runs on the read
// pool beside other readers instead of on the single writer. The list is
// only a suggestion: AllocateFrom checks each name again.
//
// With points, a query that looks only at each entity's own rows starts
// its walk where the last one found its first match, when nothing that
// could make an entity before it match has been written since (see
// ResumePoints): allocations one after another then no longer walk past
// every entity they took before.
func Candidates(ctx context.Context, rd store.Reader, req AllocateRequest, slack int, points *ResumePoints) ([]string, error) {
	if err := checkRequest(req, nil); err != nil {
		return nil, err
	}
	v, ok := rd.(viewer)
	if points == nil || !ok {
		return candidates(ctx, rd, req, slack, nil)
	}
	var out []string
	err := v.View(ctx, func(tx *store.View) error {
		var err error
		out, err = candidates(ctx, tx, req, slack, points)
		return err
	})
	return out, err
}

// candidates is Candidates in one snapshot, rd (points nil: from the
// start, nothing remembered).
func candidates(ctx context.Context, rd store.Reader, req AllocateRequest, slack int, points *ResumePoints) ([]string, error) {
	q, c, err := compileForAllocation(req, rd)
	if err != nil {
		return nil, err
	}
	key := req.Query + "\x00" + req.Distinct
	var here resumePoint
	var from string
	if points != nil && ownRowsOnly(q.root) {
		if here, err = pointHere(ctx, rd); err != nil {
			return nil, err
		}
		if from, err = points.from(ctx, rd, key, here); err != nil {
			return nil, err
		}
	} else {
		points = nil
	}
	wide := req
	wide.Count = req.Count + slack
	base, args := c.statement("SELECT e.id, e.name", false)
	if from != "" {
		base += " AND e.name >= ?"
		args = append(args, from)
	}
	picked, _, first, err := pick(ctx, rd, base, args, wide)
	if err != nil {
		return nil, err
	}
	if points != nil && first != "" {
		here.from = first
		points.put(key, here)
	}
	return picked, nil
}

// AllocateFrom is Allocate given candidates from Candidates: inside the
// write transaction it takes, in name order, the first candidates that
// still match the query (and, with Distinct, still sit under different
// ancestors), and claims them. When too few still do (others took them
// meanwhile), it falls back to Allocate, which looks again from the start.
// On an inventory that did not change since the candidates were read,
// it takes exactly what Allocate would.
func AllocateFrom(tx *store.Tx, req AllocateRequest, candidates []string) ([]string, error) {
	if len(candidates) < req.Count || checkRequest(req, tx.Store().Drivers()) != nil {
		return Allocate(tx, req) // which says why, or looks for more
	}
	rd, err := tx.Reader()
	if err != nil {
		return nil, err
	}
	// The name-order form without a rarity estimate (attribute terms as
	// probes of each candidate), never the holders-of-a-value set: the
	// candidates are a handful.
	_, c, err := compileForAllocation(req, nil)
	if err != nil {
		return nil, err
	}
	list, err := json.Marshal(candidates)
	if err != nil {
		return nil, entity.Internal("run allocation query", err)
	}
	base, args := c.statement("SELECT e.id, e.name", false)
	base += " AND e.name IN (SELECT value FROM json_each(?))"
	picked, _, _, err := pick(tx.Context(), rd, base, append(args, string(list)), req)
	if err != nil {
		return nil, err
	}
	if len(picked) < req.Count {
		return Allocate(tx, req)
	}
	return picked, claim(tx, req, picked)
}

// candidateBatch is how many candidates a distinct allocation reads at a
// time, in name order, before it looks up their ancestors.
const candidateBatch = 256

// pick chooses the entities an allocation takes: the first req.Count
// matches in name order, or with Distinct the first match under each
// ancestor until req.Count are had. It reads no further than it needs:
// without Distinct one statement with LIMIT Count, with it batches of
// candidates until enough ancestors are found. Only when too few are
// found has it read them all, and then available is how many could be
// had.
//
// base is the statement of the candidates (columns id and name, a WHERE
// that more conditions may follow) and baseArgs its arguments. first is
// the name of the first match read ("" for none): with Distinct it may be
// one passed over, for want of an ancestor.
func pick(ctx context.Context, rd store.Reader, base string, baseArgs []any, req AllocateRequest) (picked []string, available int, first string, err error) {
	used := map[int64]bool{}
	after := ""
	for batch := 0; ; batch++ {
		s, args := base, append([]any(nil), baseArgs...)
		if batch > 0 {
			s += " AND e.name > ?"
			args = append(args, after)
		}
		limit := candidateBatch
		if req.Distinct == "" {
			limit = req.Count
		}
		type candidate struct {
			id   int64
			name string
		}
		var cands []candidate
		rows, err := rd.QueryContext(ctx, s+" ORDER BY e.name LIMIT "+strconv.Itoa(limit), args...)
		if err != nil {
			return nil, 0, "", entity.Internal("run allocation query", err)
		}
		for rows.Next() {
			var cd candidate
			if err := rows.Scan(&cd.id, &cd.name); err != nil {
				rows.Close()
				return nil, 0, "", entity.Internal("run allocation query", err)
			}
			cands = append(cands, cd)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, "", entity.Internal("run allocation query", err)
		}
		if batch == 0 && len(cands) > 0 {
			first = cands[0].name
		}
		if req.Distinct == "" {
			for _, cd := range cands {
				picked = append(picked, cd.name)
			}
			return picked, len(picked), first, nil
		}
		for _, cd := range cands {
			anc, ok, err := ancestor(ctx, rd, cd.id, req.Distinct)
			if err != nil {
				return nil, 0, "", err
			}
			if !ok || used[anc] {
				continue
			}
			used[anc] = true
			picked = append(picked, cd.name)
			if len(picked) == req.Count {
				return picked, len(used), first, nil
			}
		}
		if len(cands) < limit {
			return picked, len(used), first, nil
		}
		after = cands[len(cands)-1].name
	}
}

// ancestor finds the nearest physical ancestor of an entity with the given
// driver.
func ancestor(ctx context.Context, rd store.Reader, id int64, driver string) (int64, bool, error) {
	var anc int64
	err := rd.QueryRowContext(ctx, `WITH RECURSIVE up(id, depth) AS (
		SELECT c.a, 1 FROM connections c WHERE c.b = ? AND c.type = 'contains' AND c.until IS NULL
		UNION ALL
		SELECT c.a, up.depth + 1 FROM connections c JOIN up ON c.b = up.id WHERE c.type = 'contains' AND c.until IS NULL AND up.depth < 64)
		SELECT up.id FROM up JOIN entities e ON e.id = up.id AND e.until IS NULL WHERE e.driver = ? ORDER BY up.depth LIMIT 1`, id, driver).Scan(&anc)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, entity.Internal("find ancestor", err)
	}
	return anc, true, nil
}
