// Package query implements clusto's query language: one line such as
//
//	driver:server in name:datacenterZ and attr:status,unallocated
//
// parsed with participle (Parse) and compiled (Compile) to one
// parameterised SQL statement over the inventory's schema, which Run
// executes. The language is documented in docs/query.md.
//
// Results come back ordered by name, a page at a time (Options.Limit)
// with an opaque cursor for the next page and the total number of
// matches. A query can read the inventory as it is now or as it was just
// after a past change (Options.At).
package query

import (
	"context"
	"database/sql"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Options say which state to read and which page of results to return.
type Options struct {
	// At reads the inventory as it was just after change At; 0 reads it now.
	At int64
	// Limit is the page size: 0 means DefaultLimit; larger than MaxLimit
	// means MaxLimit.
	Limit int
	// Cursor continues after the page that returned it as NextCursor; ""
	// starts at the beginning.
	Cursor string
	// DB, when set, lets Compile ask how rare an attribute value is (one
	// capped index count) to choose between walking containment down from
	// an `in`'s right side or up from its candidates, and sample the
	// name-order walk of a page (compiler.dense) to choose it or the
	// ordinary form. Run sets it. Without it the walk goes down from a
	// right side named exactly, and pages take the ordinary form.
	DB store.Reader
	// nameScan compiles for reading the first few matches in name order
	// (allocation) rather than a page and a total: see compiler.scan. It
	// is not used when a term's value is rare (the set of its holders is
	// then the cheaper start).
	nameScan bool
	// walkAlways compiles the page in the name-order form whenever the
	// query's shape allows it (walkShape), without sampling the walk
	// (compiler.dense): the differential test's way to compare that form
	// whatever the sample would say.
	walkAlways bool
	// TotalCap, when positive, bounds the count statement: a query whose
	// count would pass it answers Total = TotalCap and TotalAtLeast, for
	// the price of counting TotalCap rows instead of every match. (A
	// query read in one statement with its total, the form Compile picks
	// when the matches are few, is counted exactly all the same.)
	TotalCap int
}

// Match is one entity a query matched, as it was at the time read: the
// API's summary view of it. The caller loads whatever more it needs by
// name.
type Match = entity.Summary

// Result is one page of a query's matches, in name order.
type Result struct {
	Results []Match `json:"results"`
	// Total counts every match, not only this page's; with
	// Options.TotalCap it counts at most that many, and TotalAtLeast
	// says when more match.
	Total        int  `json:"total"`
	TotalAtLeast bool `json:"total_at_least,omitempty"`
	// NextCursor continues with the next page; "" on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Compiled is a query compiled for one set of options: the SQL for a page
// of matches, for their count, and for their ids. It is immutable.
type Compiled struct {
	// totalCap bounds the count (Options.TotalCap; 0: exact).
	totalCap int
	with     sqlFrag // "WITH RECURSIVE ...\n" or empty
	from     string  // "entities e", or a CTE joined to it
	where    sqlFrag // the condition on entities e, visibility included
	after    *string // the page starts after this name
	limit    int
	// both is set when Run reads the page and the count in one statement
	// (Both): when the statement reads a CTE first (see top in
	// compile.go), so that every match is looked up and sorted anyway, or
	// when a selective query filters with a glob or a regex, which two
	// statements would each evaluate on every candidate. Otherwise the
	// fixed cost of the larger statement is not worth it: lookups by name
	// or attribute value are a few index searches, and for queries that
	// match many (driver:server, *) the page stops early in the order of
	// an index and only the count reads every match.
	both bool
	// walk is set when the page is read in the name-order form (see
	// walkShape): a walk of one driver in name order, each entity tested
	// for the other terms.
	walk bool
	// counted, when set, is the form Count reads (see compiler.countForm);
	// nil: the page's own.
	counted *countForm
}

// Compile compiles q for opts. Options are checked here: a negative At or
// Limit, or a cursor that no page returned, is an invalid error.
func Compile(q *Query, opts Options) (*Compiled, error) {
	if opts.At < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change number %d must not be negative", opts.At)
	}
	if opts.Limit < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "limit %d must not be negative", opts.Limit)
	}
	limit := opts.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	cc := &Compiled{limit: limit, totalCap: max(opts.TotalCap, 0)}
	if opts.Cursor != "" {
		name, err := decodeCursor(opts.Cursor)
		if err != nil {
			return nil, err
		}
		cc.after = &name
	}
	c := &compiler{at: opts.At, db: opts.DB}
	terms := conjuncts(q.root)
	var from string
	var cond sqlFrag
	if driver, ok := walkShape(terms); ok && opts.At == 0 && !opts.nameScan && (opts.DB != nil || opts.walkAlways) {
		// The walk reads entities e in name order and tests each for
		// every term, relations included, when a sample of it finds
		// matches often enough.
		wc := &compiler{db: opts.DB, scan: true, walk: true}
		wcond := wc.walkCond(terms, "e")
		if opts.walkAlways || wc.dense(wcond, driver, cc.after) {
			c, cc.walk, from, cond = wc, true, "entities e", wcond
		}
	}
	if !cc.walk {
		c.scan = opts.nameScan && opts.At == 0 && !c.rare(terms)
		from, cond = c.top(q.root)
	}
	cc.from = from
	cc.both = !cc.walk && (from != "entities e" || !unselective(q.root) && filters(q.root))
	switch {
	case cc.walk:
		// The walk's condition would count by reading the whole driver:
		// count from an attribute's holders, each tested for the rest
		// as the walk tests (a relation by its probe), or else from the
		// relation's set, read as it goes (so that a capped count stops
		// early).
		if f := (&compiler{db: opts.DB, walk: true}).countForm(terms); f != nil {
			cc.counted = f
		} else {
			oc := &compiler{db: opts.DB, stream: true}
			ofrom, ocond := oc.top(q.root)
			cc.counted = oc.formOf(ofrom, ocond)
		}
	case from == "entities e" && !opts.nameScan:
		cc.counted = c.countForm(terms)
	}
	cc.where = cat(" AND ", c.visible("e"), cat("", frag("("), cond, frag(")")))
	cc.with = c.with()
	return cc, nil
}

func (c *Compiled) statement(sel string, page bool) (string, []any) {
	parts := []sqlFrag{c.with, frag(sel + " FROM " + c.from + " WHERE "), c.where}
	if page && c.after != nil {
		parts = append(parts, frag(" AND e.name > ?", *c.after))
	}
	s := cat("", parts...)
	return s.sql, s.args
}

// Page returns the statement for one page of matches: columns name,
// driver, kind, version, in name order, after the cursor. It asks for one
// row more than the limit, which tells whether another page follows.
func (c *Compiled) Page() (string, []any) {
	s, args := c.statement("SELECT e.name, e.driver, e.kind, e.version", true)
	return s + " ORDER BY e.name LIMIT " + c.limitSQL(), args
}

// Both returns one statement that reads the page and the count: each row
// is (name, driver, kind, version, total), the total counted by a window
// over every match before the cursor and the limit apply. A page with no
// row carries no total: without a cursor it is 0, else run Count. The
// window sorts every match, so use it when they are few or must all be
// sorted anyway.
func (c *Compiled) Both() (string, []any) {
	parts := []sqlFrag{c.with, frag("SELECT name, driver, kind, version, total FROM (\n  SELECT e.name, e.driver, e.kind, e.version, count(*) OVER () AS total FROM " + c.from + " WHERE "), c.where, frag(")")}
	if c.after != nil {
		parts = append(parts, frag(" WHERE name > ?", *c.after))
	}
	parts = append(parts, frag(" ORDER BY name LIMIT "+c.limitSQL()))
	s := cat("", parts...)
	return s.sql, s.args
}

// limitSQL is the LIMIT of a page: one more row than the page holds, to
// tell whether another follows. It is written into the SQL rather than
// bound: it is an integer Compile computed (2 to MaxLimit+1), never query
// text, and a bound LIMIT made a lookup by name a third slower.
func (c *Compiled) limitSQL() string { return strconv.Itoa(c.limit + 1) }

// Count returns the statement counting every match (cursor and limit
// aside), or with Options.TotalCap at most TotalCap+1 of them.
func (c *Compiled) Count() (string, []any) {
	// The cap is written into the SQL like the page's LIMIT: an integer
	// of ours.
	limit := ""
	if c.totalCap > 0 {
		limit = " LIMIT " + strconv.Itoa(c.totalCap+1)
	}
	if f := c.counted; f != nil {
		s := cat("", f.with, frag("SELECT count(*) FROM (SELECT DISTINCT "+f.id+" FROM "+f.from+" WHERE "), f.where, frag(limit+")"))
		return s.sql, s.args
	}
	if c.totalCap > 0 {
		s, args := c.statement("SELECT 1", false)
		return "SELECT count(*) FROM (" + s + limit + ")", args
	}
	return c.statement("SELECT count(*)", false)
}

// IDs returns the statement selecting the stable ids (entities.id) of the
// matches in name order, after the cursor and without a limit: run it in
// a write transaction and stop reading when you have enough.
func (c *Compiled) IDs() (string, []any) {
	s, args := c.statement("SELECT e.id", true)
	return s + " ORDER BY e.name", args
}

// Limit returns the page size in effect.
func (c *Compiled) Limit() int { return c.limit }

// Run parses text, compiles it for opts and returns one page of matches
// with the total count. Syntax errors are *SyntaxError, option errors *entity.Error of a
// user kind (query_syntax, invalid, too_large); failures of the database
// are internal errors. The page and the count are read in one
// snapshot, so that they agree (see Exec).
func Run(ctx context.Context, db store.Reader, text string, opts Options) (*Result, error) {
	q, err := Parse(text)
	if err != nil {
		return nil, err
	}
	if opts.DB == nil {
		opts.DB = db
	}
	c, err := Compile(q, opts)
	if err != nil {
		return nil, err
	}
	return c.Exec(ctx, db)
}

func (c *Compiled) run(ctx context.Context, db store.Reader) (*Result, error) {
	res := &Result{Results: []Match{}}
	if c.both {
		if err := c.runBoth(ctx, db, res); err != nil {
			return nil, err
		}
	} else if err := c.runPageAndCount(ctx, db, res); err != nil {
		return nil, err
	}
	if len(res.Results) > c.limit {
		res.Results = res.Results[:c.limit]
		res.NextCursor = encodeCursor(res.Results[c.limit-1].Name)
	}
	return res, nil
}

func (c *Compiled) runBoth(ctx context.Context, db store.Reader, res *Result) error {
	s, args := c.Both()
	rows, err := db.QueryContext(ctx, s, args...)
	if err != nil {
		return entity.Internal("run query", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m Match
		var kind string
		if err := rows.Scan(&m.Name, &m.Driver, &kind, &m.Version, &res.Total); err != nil {
			return entity.Internal("run query", err)
		}
		m.Kind = entity.Kind(kind)
		res.Results = append(res.Results, m)
	}
	if err := rows.Err(); err != nil {
		return entity.Internal("run query", err)
	}
	rows.Close()
	if len(res.Results) == 0 && c.after != nil {
		return c.count(ctx, db, res)
	}
	return nil
}

func (c *Compiled) runPageAndCount(ctx context.Context, db store.Reader, res *Result) error {
	s, args := c.Page()
	rows, err := db.QueryContext(ctx, s, args...)
	if err != nil {
		return entity.Internal("run query", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m Match
		var kind string
		if err := rows.Scan(&m.Name, &m.Driver, &kind, &m.Version); err != nil {
			return entity.Internal("run query", err)
		}
		m.Kind = entity.Kind(kind)
		res.Results = append(res.Results, m)
	}
	if err := rows.Err(); err != nil {
		return entity.Internal("run query", err)
	}
	rows.Close()
	if c.after == nil && len(res.Results) <= c.limit {
		// The first page holds every match: its length is the total, and
		// counting them again would cost the count statement for nothing.
		res.Total = len(res.Results)
		return nil
	}
	return c.count(ctx, db, res)
}

func (c *Compiled) count(ctx context.Context, db store.Reader, res *Result) error {
	s, args := c.Count()
	rows, err := db.QueryContext(ctx, s, args...)
	if err != nil {
		return entity.Internal("count query matches", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return entity.Internal("count query matches", err)
		}
		return entity.Internal("count query matches", sql.ErrNoRows)
	}
	if err := rows.Scan(&res.Total); err != nil {
		return entity.Internal("count query matches", err)
	}
	if c.totalCap > 0 && res.Total > c.totalCap {
		res.Total, res.TotalAtLeast = c.totalCap, true
	}
	return nil
}

// statementFor returns the statement Run executes for c: Both, or Page
// (followed by Count).
func (c *Compiled) statementFor() (string, []any) {
	if c.both {
		return c.Both()
	}
	return c.Page()
}

// Explain parses and compiles text and returns the statement Run executes
// for a page of matches, with its parameters, so that a slow query can be
// examined (EXPLAIN QUERY PLAN it in the sqlite3 shell, or call Plan).
// That is the Both statement that reads page and count at once, or, for
// queries matching many entities (driver:server), the Page statement,
// which Run follows with Count. Run compiles with opts.DB set, whose
// estimates choose some forms (Options.DB, compiler.dense): pass it to
// see the statement Run executes.
func Explain(text string, opts Options) (string, []any, error) {
	q, err := Parse(text)
	if err != nil {
		return "", nil, err
	}
	c, err := Compile(q, opts)
	if err != nil {
		return "", nil, err
	}
	s, args := c.statementFor()
	return s, args, nil
}

// Plan returns SQLite's query plan (EXPLAIN QUERY PLAN) for the page
// statement of text, one line per step, indented by depth.
func Plan(ctx context.Context, db store.Reader, text string, opts Options) ([]string, error) {
	s, args, err := Explain(text, opts)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+s, args...)
	if err != nil {
		return nil, entity.Internal("explain query", err)
	}
	defer rows.Close()
	depth := map[int64]int{}
	var out []string
	for rows.Next() {
		var id, parent, unused int64
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return nil, entity.Internal("explain query", err)
		}
		d := 0
		if p, ok := depth[parent]; ok {
			d = p + 1
		}
		depth[id] = d
		out = append(out, strings.Repeat("  ", d)+detail)
	}
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("explain query", err)
	}
	return out, nil
}

// The cursor is the last name of a page behind a version tag, in URL-safe
// base64: opaque to clients, and changeable later without breaking the
// meaning of old cursors (they fail cleanly).
const cursorTag = "n1:"

func encodeCursor(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorTag + name))
}

func decodeCursor(cur string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cur)
	s := string(b)
	if err != nil || !strings.HasPrefix(s, cursorTag) || !utf8.ValidString(s) || len(s) == len(cursorTag) {
		return "", entity.Errorf(entity.KindInvalid, "invalid cursor %q: pass the next_cursor of the previous page unchanged", truncate(cur, 40))
	}
	return s[len(cursorTag):], nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
