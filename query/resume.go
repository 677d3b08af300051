package query

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// ResumePoints remembers where allocations by query found their first
// match, so that the next allocation of the same query starts its walk
// there instead of at the first name. Allocations take matches in name
// order and their set usually makes what they took stop matching
// (status spare to allocated): without a resume point each allocation
// walked past every entity taken before it, and the thousandth
// allocation of a run read a thousand entities to find one.
//
// A point says: in the snapshot it was read in, no entity named before
// From matched the query. It still holds in a later snapshot when no
// entity named before From has a row written or ended since: for a query
// that looks only at each entity's own rows (its name, driver, kind,
// attributes and addresses: no in, connected to, contains or group
// terms), whether an entity matches can change only through its own
// rows. That is checked against the rows themselves, as the rules at
// commit are, so writes by any path or process are seen; when it does not
// hold, or the query looks at other entities, the walk starts at the
// first name, as without points.
//
// The points are a hint for Candidates, never a source of truth: the
// writer checks every candidate again (AllocateFrom).
type ResumePoints struct {
	mu     sync.Mutex
	points map[string]resumePoint
	used   atomic.Int64
}

// Used is how many walks started at a point rather than at the first
// name.
func (p *ResumePoints) Used() int64 { return p.used.Load() }

// resumePoint is one query's point and the snapshot it was read in.
type resumePoint struct {
	from string // the first match's name
	// The snapshot: its newest change and the newest rowids of entities
	// and attrs (rows are only appended; an edit ends a row and writes
	// another).
	change, entityRid, attrRid int64
}

// maxResumePoints bounds the queries remembered; past it they are all
// forgotten (allocation tooling uses a handful of queries).
const maxResumePoints = 1024

// maxResumeRows bounds the rows written since a point that checking it
// reads; past it the walk starts at the first name.
const maxResumeRows = 20000

// NewResumePoints returns an empty set of points.
func NewResumePoints() *ResumePoints {
	return &ResumePoints{points: map[string]resumePoint{}}
}

// Forget drops every point (after a drivers reload, say).
func (p *ResumePoints) Forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.points)
}

// put remembers pt for key unless a point read in a newer snapshot is
// there.
func (p *ResumePoints) put(key string, pt resumePoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.points[key]; ok && old.change > pt.change {
		return
	}
	if len(p.points) >= maxResumePoints {
		clear(p.points)
	}
	p.points[key] = pt
}

// from is where the walk of key may start in snapshot here ("" for the
// first name): the point's name, when the point still holds.
func (p *ResumePoints) from(ctx context.Context, rd store.Reader, key string, here resumePoint) (string, error) {
	p.mu.Lock()
	pt, ok := p.points[key]
	p.mu.Unlock()
	if !ok || pt.change > here.change || pt.entityRid > here.entityRid || pt.attrRid > here.attrRid ||
		here.entityRid-pt.entityRid+here.attrRid-pt.attrRid > maxResumeRows {
		return "", nil
	}
	var touched bool
	// The unary + on e.name keeps SQLite on the ids (a handful) rather
	// than walking every name before From.
	err := rd.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM entities e WHERE e.until IS NULL AND +e.name < ?1 AND e.id IN (
		SELECT entity_id FROM attrs NOT INDEXED WHERE rid > ?2
		UNION ALL SELECT entity_id FROM attrs INDEXED BY attrs_ended WHERE until > ?3
		UNION ALL SELECT id FROM entities NOT INDEXED WHERE rid > ?4))`,
		pt.from, pt.attrRid, pt.change, pt.entityRid).Scan(&touched)
	if err != nil {
		return "", entity.Internal("check where an allocation may start", err)
	}
	if touched {
		return "", nil
	}
	p.used.Add(1)
	return pt.from, nil
}

// pointHere reads the snapshot rd is: its newest change and rowids.
func pointHere(ctx context.Context, rd store.Reader) (resumePoint, error) {
	var pt resumePoint
	err := rd.QueryRowContext(ctx, `SELECT (SELECT coalesce(max(id), 0) FROM changes), (SELECT coalesce(max(rid), 0) FROM entities), (SELECT coalesce(max(rid), 0) FROM attrs)`).
		Scan(&pt.change, &pt.entityRid, &pt.attrRid)
	if err != nil {
		return pt, entity.Internal("read where an allocation may start", err)
	}
	return pt, nil
}

// ownRowsOnly reports whether an entity matches n depends only on
// its own rows: fields, attributes and addresses, and and/or/not of them.
func ownRowsOnly(n node) bool {
	switch n := n.(type) {
	case *fieldNode, *attrNode, *ipNode, *allNode:
		return true
	case *notNode:
		return ownRowsOnly(n.x)
	case *andNode:
		return !slices.ContainsFunc(n.terms, notOwnRowsOnly)
	case *orNode:
		return !slices.ContainsFunc(n.terms, notOwnRowsOnly)
	}
	return false // relations and groups look at other entities
}

func notOwnRowsOnly(n node) bool { return !ownRowsOnly(n) }
