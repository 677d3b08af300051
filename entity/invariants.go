package entity

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/schema"
)

// The inventory's rules are enforced on the state a transaction leaves,
// not by the operations that usually change their inputs: a rule such as
// "no two devices share a rack unit" reads a rack's `units`, its
// children's positions and heights, and the drivers' defaults, and any
// write to any of those (an insert, an attribute edit, a driver reload)
// could break it. So every rule is code that answers one question, "which
// problems does the inventory have?", asked of two scopes:
//
//   - at commit, inside the write transaction, of the entities that the
//     transaction's change records name (the subject and the peer of each
//     change), which is cheap: a rule widens that set itself to what it
//     needs (a rack of a touched server, the members of a touched pool);
//   - by `clustod check`, of the whole inventory.
//
// The write path and check run the same code, so they cannot disagree. A
// transaction that leaves any problem is refused whole (conflict, code
// "invariant", naming the rule, the entities and the values) and nothing
// of it is stored.
//
// The operations keep their own checks too: they fail early, at the op
// that went wrong, with the most specific message. The rules are what
// makes the state right whatever path wrote it.

// Problem is one broken rule found in the inventory.
type Problem struct {
	// Rule names the invariant (see Invariants).
	Rule    string `json:"rule"`
	Message string `json:"message"`
	// Entities are the names of the entities involved.
	Entities []string `json:"entities,omitempty"`
	// Values are the numbers and addresses that collide.
	Values map[string]any `json:"values,omitempty"`
}

// Invariant describes one rule, for docs and listings.
type Invariant struct {
	Name string `json:"name"`
	Doc  string `json:"doc"`
}

// invariant is a rule with its test.
type invariant struct {
	Invariant
	test func(c *checker) error
	// needs names what must touch the scope for the rule to have anything
	// to look at (see profile); "" for rules that always run.
	needs string
}

// invariants is every rule, in the order check reports them. It is filled
// in init: the tests refer to helpers that refer back to the list.
var invariants []invariant

// Invariants lists the rules every committed transaction keeps and
// clustod check verifies.
func Invariants() []Invariant {
	out := make([]Invariant, len(invariants))
	for i, inv := range invariants {
		out[i] = inv.Invariant
	}
	return out
}

func init() {
	invariants = []invariant{
		{Invariant{"known-driver", "every entity's driver is registered"}, testKnownDriver, ""},
		{Invariant{"single-value", "the keys the rules read (units, height, cidr, gateway, exclusive, unique, basename, digits, next) hold at most one value"}, testSingleValue, ""},
		{Invariant{"attr-type", "every value of a key its driver declares has the declared type and minimum"}, testAttrTypes, ""},
		{Invariant{"live-references", "connections, references, allocations and attributes belong to and point at live entities"}, testLiveReferences, ""},
		{Invariant{"one-parent", "an entity has at most one physical parent"}, testOneParent, "contains"},
		{Invariant{"parent-allowed", "a child's driver may sit in its parent's driver"}, testParentAllowed, "contains"},
		{Invariant{"contains-loop", "containment has no loops"}, testContainsLoop, "contains"},
		{Invariant{"member-loop", "group membership has no loops"}, testMemberLoop, "members"},
		{Invariant{"rack-fit", "a placed child's position and height lie inside its container's units 1..units"}, testRackFit, "contains"},
		{Invariant{"rack-overlap", "no two children of a container share a unit"}, testRackOverlap, "contains"},
		{Invariant{"port-one-link", "a port carries at most one link"}, testPortOneLink, "links"},
		{Invariant{"link-both-ends", "every link is stored from both of its ends"}, testLinkBothEnds, "links"},
		{Invariant{"link-ports", "a link joins ports its entities' drivers declare, of one type"}, testLinkPorts, "links"},
		{Invariant{"block-cidr", "an ip block has a canonical IPv4 or IPv6 network (never IPv4-mapped IPv6); one is required once it is nested, holds blocks or hands out addresses"}, testBlockCIDR, "blocks"},
		{Invariant{"block-gateway", "a block's gateway lies inside it and is not its network or broadcast address"}, testBlockGateway, "blocks"},
		{Invariant{"block-inside-parent", "a child block lies strictly inside its parent block"}, testBlockInsideParent, "blocks"},
		{Invariant{"block-siblings", "the child blocks of a block do not overlap"}, testBlockSiblings, "blocks"},
		{Invariant{"allocation-inside-block", "an allocated address lies inside its block and matches its offset"}, testAllocationInsideBlock, "blocks"},
		{Invariant{"allocation-reserved", "no block hands out its network or broadcast address (IPv4 up to /30) or its gateway"}, testAllocationReserved, "blocks"},
		{Invariant{"allocation-in-child", "no block hands out an address inside one of its child blocks"}, testAllocationInChild, "blocks"},
		{Invariant{"address-one-holder", "an address is handed out once in a block and its hierarchy, and an ip attribute holding an allocated address belongs to a holder of it"}, testAddressOneHolder, ""},
		{Invariant{"allocation-attribute", "the holder of an allocated address carries it as its ip attribute (subkey: the interface)"}, testAllocationAttribute, ""},
		{Invariant{"free-space-index", "the runs of allocated addresses (ip_runs) cover exactly the allocated addresses"}, testFreeSpaceIndex, "blocks"},
		{Invariant{"pool-exclusive", "a member of an exclusive pool is in no other pool"}, testPoolExclusive, "members"},
		{Invariant{"pool-unique", "a thing is in at most one unique pool"}, testPoolUnique, "members"},
		{Invariant{"name-counter", "a name manager's next number never goes below a number it held before"}, testNameCounter, "namemanagers"},
		{Invariant{"history", "each entity has one current row, versions chain, rows end after they start, and no row refers to a change not yet made"}, testHistory, ""},
	}
}

// checker runs the rules over one snapshot: the whole inventory, or the
// scope of one write transaction.
type checker struct {
	ctx     context.Context
	q       queryer
	drivers *drivers.Registry
	// scoped limits the rules to the entities in temp.inv_scope and to the
	// rows and changes from firstCid on (the transaction's own).
	scoped   bool
	firstCid int64
	rule     string
	problems []Problem
	names    map[int64]string
	// What several rules read, loaded once per run.
	rackCache    *rackData
	blockCache   map[int64]*blockInfo
	scope        []*blockInfo
	blocksLoaded bool
}

// report records a problem of the rule being run.
func (c *checker) report(msg string, entities []string, values map[string]any) {
	c.problems = append(c.problems, Problem{Rule: c.rule, Message: msg, Entities: entities, Values: values})
}

// in returns a condition on column col (entity ids) that holds for the
// ids in scope: every id when checking the whole inventory. col is always
// one of the store's own column names, never input.
func (c *checker) in(col string) string {
	if !c.scoped {
		return "1"
	}
	return col + " IN (SELECT id FROM temp.inv_scope)"
}

// rows runs a query and calls fn for each row; fn scans it.
func (c *checker) rows(query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := c.q.QueryContext(c.ctx, query, args...)
	if err != nil {
		return Internal("check "+c.rule, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return Internal("check "+c.rule, err)
		}
	}
	return Internal("check "+c.rule, rows.Err())
}

// sqlRule runs a query returning one row per problem: its message, the
// names involved (comma-separated) and optionally a JSON object of values.
func (c *checker) sqlRule(query string, args ...any) error {
	return c.rows(query, args, func(r *sql.Rows) error {
		var msg string
		var names, values sql.NullString
		var err error
		cols, _ := r.Columns()
		if len(cols) == 3 {
			err = r.Scan(&msg, &names, &values)
		} else {
			err = r.Scan(&msg, &names)
		}
		if err != nil {
			return err
		}
		var ents []string
		if names.String != "" {
			ents = strings.Split(names.String, ",")
		}
		var vals map[string]any
		if values.Valid && values.String != "" {
			if err := json.Unmarshal([]byte(values.String), &vals); err != nil {
				return err
			}
		}
		c.report(msg, ents, vals)
		return nil
	})
}

// name returns an entity's current name, or #id when it has none (it was
// deleted, or the row is dangling).
func (c *checker) name(id int64) string {
	if n, ok := c.names[id]; ok {
		return n
	}
	var n string
	if err := c.q.QueryRowContext(c.ctx, "SELECT name FROM entities WHERE id = ? AND until IS NULL", id).Scan(&n); err != nil {
		n = fmt.Sprintf("#%d", id)
	}
	if c.names == nil {
		c.names = map[int64]string{}
	}
	c.names[id] = n
	return n
}

// driverOf looks a driver up; nil when it is not registered (known-driver
// reports that once; the other rules pass such entities over).
func (c *checker) driverOf(name string) *drivers.Driver {
	d, _ := c.drivers.Lookup(name)
	return d
}

// profileSQL says what touches the scope: an ip block, a membership, a
// name manager, a containment, a link (current rows with an end in scope).
// A rule that looks only at such things has nothing to look at without
// them, and is not run: the common commit (one address, one attribute)
// runs a fraction of the rules.
const profileSQL = `SELECT
	EXISTS (SELECT 1 FROM temp.inv_scope s CROSS JOIN entities e ON e.id = s.id AND e.until IS NULL AND e.driver = 'ipblock'),
	EXISTS (SELECT 1 FROM temp.inv_scope s CROSS JOIN connections x ON x.a = s.id AND x.type = 'member' AND x.until IS NULL)
		OR EXISTS (SELECT 1 FROM temp.inv_scope s CROSS JOIN connections x ON x.b = s.id AND x.type = 'member' AND x.until IS NULL),
	EXISTS (SELECT 1 FROM temp.inv_scope s CROSS JOIN entities e ON e.id = s.id AND e.until IS NULL AND e.driver = 'namemanager'),
	EXISTS (SELECT 1 FROM temp.inv_scope s CROSS JOIN connections x ON x.a = s.id AND x.type = 'contains' AND x.until IS NULL)
		OR EXISTS (SELECT 1 FROM temp.inv_scope s CROSS JOIN connections x ON x.b = s.id AND x.type = 'contains' AND x.until IS NULL),
	EXISTS (SELECT 1 FROM temp.inv_scope s CROSS JOIN connections x ON x.a = s.id AND x.type = 'link' AND x.until IS NULL)
		OR EXISTS (SELECT 1 FROM temp.inv_scope s CROSS JOIN connections x ON x.b = s.id AND x.type = 'link' AND x.until IS NULL)`

func (c *checker) run() error {
	present := map[string]bool{"": true, "blocks": true, "members": true, "namemanagers": true, "contains": true, "links": true}
	if c.scoped {
		var b, m, n, ct, l bool
		if err := c.q.QueryRowContext(c.ctx, profileSQL).Scan(&b, &m, &n, &ct, &l); err != nil {
			return Internal("check rules", err)
		}
		present = map[string]bool{"": true, "blocks": b, "members": m, "namemanagers": n, "contains": ct, "links": l}
	}
	for _, inv := range invariants {
		if !present[inv.needs] {
			continue
		}
		c.rule = inv.Name
		if err := inv.test(c); err != nil {
			return err
		}
	}
	return nil
}

// Check runs SQLite's integrity and foreign-key checks and every rule of
// Invariants over the whole inventory, in one read snapshot, and returns
// every problem found.
func (s *Store) Check(ctx context.Context) ([]Problem, error) {
	return s.CheckWith(ctx, s.drivers)
}

// CheckWith is Check with another driver registry: what the inventory's
// problems would be under those drivers.
func (s *Store) CheckWith(ctx context.Context, reg *drivers.Registry) ([]Problem, error) {
	var problems []Problem
	err := s.readSnapshot(ctx, func(q queryer) error {
		var err error
		problems, err = checkAll(ctx, q, reg)
		return err
	})
	return problems, err
}

// CheckSnapshot runs the checks of Check on a finished copy of a database
// (a backup) without writing to it: the file is opened immutable and
// read-only, so its bytes, and the SHA-256 its backup reported, stay as
// they were. A file of another schema version than this build's is
// refused: restoring it migrates a copy, which Restore checks.
func CheckSnapshot(ctx context.Context, path string, reg *drivers.Registry) ([]Problem, error) {
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
	if reg == nil {
		reg = drivers.Builtin()
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, Internal("begin read", err)
	}
	defer tx.Rollback()
	return checkAll(ctx, tx, reg)
}

// checkAll is the whole check: SQLite's own, then every rule.
func checkAll(ctx context.Context, q queryer, reg *drivers.Registry) ([]Problem, error) {
	var problems []Problem
	rows, err := q.QueryContext(ctx, "PRAGMA integrity_check")
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
			problems = append(problems, Problem{Rule: "sqlite-integrity", Message: msg})
		}
	}
	rows.Close()
	fk, err := q.QueryContext(ctx, "PRAGMA foreign_key_check")
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
		problems = append(problems, Problem{Rule: "foreign-key", Message: fmt.Sprintf("%s row %d refers to a missing %s row", table, rowid.Int64, parent)})
	}
	fk.Close()
	c := &checker{ctx: ctx, q: q, drivers: reg}
	if err := c.run(); err != nil {
		return nil, err
	}
	return append(problems, c.problems...), nil
}

// checkCommit runs every rule over what this transaction touched: the
// entities its changes name. It runs last, after the transaction's
// pending writes (runs, versions) are out, on its own connection.
func (tx *Tx) checkCommit() error {
	if tx.firstCid == 0 {
		return nil // nothing was recorded, so nothing changed
	}
	if err := tx.fillScope(`INSERT OR IGNORE INTO temp.inv_scope(id)
		SELECT entity_id FROM changes WHERE id >= ?1 AND entity_id IS NOT NULL
		UNION SELECT peer_id FROM changes WHERE id >= ?1 AND peer_id IS NOT NULL`, tx.firstCid); err != nil {
		return err
	}
	return tx.checkScope(tx.s.drivers, tx.firstCid)
}

// fillScope empties the scope table and fills it with the ids query selects.
func (tx *Tx) fillScope(query string, args ...any) error {
	if _, err := tx.exec("check rules", "CREATE TEMP TABLE IF NOT EXISTS inv_scope(id INTEGER PRIMARY KEY)"); err != nil {
		return err
	}
	if _, err := tx.exec("check rules", "DELETE FROM temp.inv_scope"); err != nil {
		return err
	}
	_, err := tx.exec("check rules", query, args...)
	return err
}

// checkScope runs the rules over the scope table under reg, counting
// the rows and changes from change from on as the transaction's own (0:
// all of them, as if every input of the entities in scope had changed),
// and refuses the transaction when any rule breaks.
func (tx *Tx) checkScope(reg *drivers.Registry, from int64) error {
	c := &checker{ctx: tx.ctx, q: cached{tx}, drivers: reg, scoped: true, firstCid: from}
	if err := c.run(); err != nil {
		return err
	}
	if len(c.problems) > 0 {
		return violation(c.problems)
	}
	return nil
}

// maxReportedProblems bounds the problems a refusal carries.
const maxReportedProblems = 20

// violation is the error of a transaction that would break rules.
func violation(problems []Problem) error {
	p := problems[0]
	msg := fmt.Sprintf("refused: this would break rule %s: %s", p.Rule, p.Message)
	if len(problems) > 1 {
		msg += fmt.Sprintf(" (and %d more problems)", len(problems)-1)
	}
	return Errorf(KindConflict, "%s", msg).WithCode("invariant").
		With("rule", p.Rule).With("entities", p.Entities).With("problems", problems[:min(len(problems), maxReportedProblems)])
}

// ReloadDrivers reads the drivers file again and adopts what it defines
// only if the inventory keeps every rule under the new drivers (a rack
// driver's default units shrunk below a placed device, a port dropped
// that carries a link, a parent no longer allowed). The rules run over
// every entity of each driver that changed, on the writer, so that no
// write slips in between the check and the swap. A file that breaks a
// rule is refused whole (conflict, code invariant) and the drivers stay
// as they were.
func (s *Store) ReloadDrivers(ctx context.Context, path string) error {
	staged, err := s.drivers.Staged(path)
	if err != nil {
		// The message names the file and the faulty definition: it is
		// the operator's own file.
		return Errorf(KindInvalid, "%s", err.Error())
	}
	changed := s.drivers.Changed(staged)
	return s.Update(ctx, "", func(tx *Tx) error {
		if len(changed) > 0 {
			list, err := json.Marshal(changed)
			if err != nil {
				return Internal("reload drivers", err)
			}
			if err := tx.fillScope("INSERT INTO temp.inv_scope(id) SELECT id FROM entities WHERE until IS NULL AND driver IN (SELECT value FROM json_each(?))", string(list)); err != nil {
				return err
			}
			if err := tx.checkScope(staged, 0); err != nil {
				return fmt.Errorf("the drivers file %s does not fit the inventory: %w", path, err)
			}
		}
		s.drivers.Replace(staged)
		return nil
	})
}
