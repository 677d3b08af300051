package entity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/clusto/clusto/schema"
)

// Problem is one broken invariant found by Check.
type Problem struct {
	Check    string   `json:"check"`
	Message  string   `json:"message"`
	Entities []string `json:"entities,omitempty"`
}

// invariant is a query that returns one row per problem: a message and a
// comma-separated list of the entity names involved.
type invariant struct {
	name, query string
}

// The inventory's own invariants, beyond what constraints enforce (or in
// case a file was edited by hand).
var invariants = []invariant{
	{"rack-overlap", `SELECT 'units ' || c1.position || '-' || (c1.position + c1.height - 1) || ' of ' || p.name || ' overlap units ' ||
			c2.position || '-' || (c2.position + c2.height - 1), e1.name || ',' || e2.name
		FROM connections c1 JOIN connections c2 ON c1.a = c2.a AND c1.rid < c2.rid
		JOIN entities p ON p.id = c1.a AND p.until IS NULL
		JOIN entities e1 ON e1.id = c1.b AND e1.until IS NULL JOIN entities e2 ON e2.id = c2.b AND e2.until IS NULL
		WHERE c1.type = 'contains' AND c2.type = 'contains' AND c1.until IS NULL AND c2.until IS NULL
		AND c1.position IS NOT NULL AND c2.position IS NOT NULL
		AND c1.position <= c2.position + c2.height - 1 AND c2.position <= c1.position + c1.height - 1`},
	{"two-parents", `SELECT 'has ' || count(*) || ' physical parents', e.name FROM connections c JOIN entities e ON e.id = c.b AND e.until IS NULL
		WHERE c.type = 'contains' AND c.until IS NULL GROUP BY c.b HAVING count(*) > 1`},
	{"port-two-links", `SELECT 'port ' || c.a_port || ' carries ' || count(*) || ' links', e.name FROM connections c JOIN entities e ON e.id = c.a AND e.until IS NULL
		WHERE c.type = 'link' AND c.until IS NULL GROUP BY c.a, c.a_port HAVING count(*) > 1`},
	{"link-one-sided", `SELECT 'link ' || c.a_port || ' -> ' || c.b_port || ' has no reverse row', coalesce(e.name, '#' || c.a) FROM connections c
		LEFT JOIN entities e ON e.id = c.a AND e.until IS NULL
		WHERE c.type = 'link' AND c.until IS NULL AND NOT EXISTS (SELECT 1 FROM connections r WHERE r.type = 'link' AND r.until IS NULL
		AND r.a = c.b AND r.b = c.a AND r.a_port = c.b_port AND r.b_port = c.a_port)`},
	{"dangling-connection", `SELECT c.type || ' connection to a deleted entity', coalesce(ea.name, '#' || c.a) || ',' || coalesce(eb.name, '#' || c.b) FROM connections c
		LEFT JOIN entities ea ON ea.id = c.a AND ea.until IS NULL LEFT JOIN entities eb ON eb.id = c.b AND eb.until IS NULL
		WHERE c.until IS NULL AND (ea.rid IS NULL OR eb.rid IS NULL)`},
	{"dangling-attribute", `SELECT 'attribute ' || a.key || ' of a deleted entity, or referring to one', coalesce(e.name, '#' || a.entity_id) FROM attrs a
		LEFT JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
		WHERE a.until IS NULL AND (e.rid IS NULL OR (a.ref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entities t WHERE t.id = a.ref AND t.until IS NULL)))`},
	{"address-twice", `SELECT 'address allocated ' || count(*) || ' times in one block', group_concat(e.name) FROM ip_allocations i
		LEFT JOIN entities e ON e.id = i.entity_id AND e.until IS NULL WHERE i.until IS NULL GROUP BY i.block_id, i.offset HAVING count(*) > 1`},
	{"allocation-dangling", `SELECT 'allocation held by or from a deleted entity', coalesce(b.name, '#' || i.block_id) || ',' || coalesce(h.name, '#' || i.entity_id)
		FROM ip_allocations i LEFT JOIN entities b ON b.id = i.block_id AND b.until IS NULL LEFT JOIN entities h ON h.id = i.entity_id AND h.until IS NULL
		WHERE i.until IS NULL AND (b.rid IS NULL OR h.rid IS NULL)`},
	{"allocation-outside-runs", `SELECT 'allocation missing from the free-space index', coalesce(b.name, '#' || i.block_id) FROM ip_allocations i
		LEFT JOIN entities b ON b.id = i.block_id AND b.until IS NULL
		WHERE i.until IS NULL AND NOT EXISTS (SELECT 1 FROM ip_runs r WHERE r.block_id = i.block_id AND r.first <= i.offset AND r.last >= i.offset)`},
	{"runs-count", `SELECT 'free-space index counts ' || r.n || ' addresses but ' || coalesce(a.n, 0) || ' are allocated', coalesce(b.name, '#' || r.block_id)
		FROM (SELECT block_id, sum(last - first + 1) AS n FROM ip_runs GROUP BY block_id) r
		LEFT JOIN (SELECT block_id, count(*) AS n FROM ip_allocations WHERE until IS NULL GROUP BY block_id) a ON a.block_id = r.block_id
		LEFT JOIN entities b ON b.id = r.block_id AND b.until IS NULL WHERE r.n != coalesce(a.n, 0)`},
	{"entity-versions", `SELECT 'has ' || count(*) || ' current rows', group_concat(name) FROM entities WHERE until IS NULL GROUP BY id HAVING count(*) > 1`},
	{"history-order", `SELECT 'a row ends (change ' || until || ') before it starts (change ' || since || ')', '' FROM (
		SELECT since, until FROM entities UNION ALL SELECT since, until FROM attrs UNION ALL SELECT since, until FROM connections
		UNION ALL SELECT since, until FROM ip_allocations) WHERE until IS NOT NULL AND until < since`},
	{"history-chain", `SELECT 'version ' || v.version || ' ends at change ' || v.until || ' but version ' || n.version || ' starts at ' || n.since, n.name
		FROM entities v JOIN entities n ON n.id = v.id AND n.version = v.version + 1 WHERE v.until IS NOT NULL AND v.until != n.since`},
	{"history-future", `SELECT 'a row refers to change ' || x || ', newer than the newest change', '' FROM (
		SELECT max(since, coalesce(until, 0)) AS x FROM entities UNION ALL SELECT max(since, coalesce(until, 0)) FROM attrs
		UNION ALL SELECT max(since, coalesce(until, 0)) FROM connections) WHERE x > (SELECT coalesce(max(id), 0) FROM changes)`},
}

// Check runs SQLite's integrity and foreign-key checks and the inventory's
// invariants (no overlapping rack units, no port with two links, no address
// allocated twice, no entity with two physical parents, history consistent
// with the current state) and returns every problem found.
func (s *Store) Check(ctx context.Context) ([]Problem, error) {
	return check(ctx, s.db.Read)
}

// CheckSnapshot runs the checks of Check on a finished copy of a database
// (a backup) without writing to it: the file is opened immutable and
// read-only, so its bytes, and the SHA-256 its backup reported, stay as
// they were. A file of another schema version than this build's is
// refused: restoring it migrates a copy, which Restore checks.
func CheckSnapshot(ctx context.Context, path string) ([]Problem, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, Errorf(KindNotFound, "backup %s does not exist", path)
	}
	if err := refuseLiveLog(path); err != nil {
		return nil, err
	}
	db, err := schema.OpenSnapshot(path)
	if err != nil {
		return nil, Errorf(KindInvalid, "backup %s: %v", path, err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, Errorf(KindInvalid, "backup %s is not an inventory: %v", path, err)
	}
	if version != schema.LatestVersion() {
		return nil, Errorf(KindInvalid, "backup %s has schema version %d and this build checks version %d: restore it (which migrates and checks a copy) or check it with the build that wrote it",
			path, version, schema.LatestVersion())
	}
	return check(ctx, db)
}

func check(ctx context.Context, db *sql.DB) ([]Problem, error) {
	var problems []Problem
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, Internal("integrity check", err)
	}
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			rows.Close()
			return nil, Internal("integrity check", err)
		}
		if msg != "ok" {
			problems = append(problems, Problem{Check: "sqlite-integrity", Message: msg})
		}
	}
	rows.Close()
	fk, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return nil, Internal("foreign key check", err)
	}
	for fk.Next() {
		var table, parent string
		var rowid, idx sql.NullInt64
		if err := fk.Scan(&table, &rowid, &parent, &idx); err != nil {
			fk.Close()
			return nil, Internal("foreign key check", err)
		}
		problems = append(problems, Problem{Check: "foreign-key", Message: fmt.Sprintf("%s row %d refers to a missing %s row", table, rowid.Int64, parent)})
	}
	fk.Close()
	for _, inv := range invariants {
		rows, err := db.QueryContext(ctx, inv.query)
		if err != nil {
			return nil, Internal("check "+inv.name, err)
		}
		for rows.Next() {
			var msg string
			var names sql.NullString
			if err := rows.Scan(&msg, &names); err != nil {
				rows.Close()
				return nil, Internal("check "+inv.name, err)
			}
			p := Problem{Check: inv.name, Message: msg}
			if names.String != "" {
				p.Entities = strings.Split(names.String, ",")
			}
			problems = append(problems, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, Internal("check "+inv.name, err)
		}
	}
	return problems, nil
}
