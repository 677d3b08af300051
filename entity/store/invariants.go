package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/schema"
)

// The inventory's rules are enforced on the state a transaction leaves,
// not by the operations that usually change their inputs: a rule such as
// "no two devices share a rack unit" reads a rack's `units`, its
// children's positions and heights, and the drivers' defaults, and any
// write to any of those (an insert, an attribute edit, a driver reload)
// could break it. So every rule is code that answers one question, "which
// problems does the inventory have?", asked of two sets of rows:
//
//   - at commit, inside the write transaction, of the rows it changed:
//     those it wrote (rowids past the tables' last ones when it began;
//     rows of the versioned tables are only appended) and those it ended
//     (until at or past its first change, through the indexes of ended
//     rows), each rule widening that set to what it needs (the rack of a
//     new placement, the members of a pool whose flag was written);
//   - by `clustod check`, of the whole inventory.
//
// The write path and check run the same code, so they cannot disagree.
// What the rows are is read from the database, not from the path that
// wrote them. A transaction that leaves any problem is refused whole
// (conflict, code "invariant", naming the rule, the entities and the
// values) and nothing of it is stored.
//
// The operations keep their own checks too: they fail early, at the op
// that went wrong, with the most specific message. The rules are what
// makes the state right whatever path wrote it.

// Invariant describes one rule, for docs and listings.
type Invariant struct {
	Name string `json:"name"`
	Doc  string `json:"doc"`
}

// invariant is a rule with its test.
type invariant struct {
	Invariant
	test func(c *checker) error
	// needs lists, space-separated, the kinds of change (see changeKinds)
	// of which one must be in a transaction for the rule to have anything
	// to look at; "" for rules that always run.
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
		{Invariant{"known-driver", "every entity's driver is registered"}, testKnownDriver, "entities_driver"},
		{Invariant{"single-value", "the keys the rules read (units, height, cidr, gateway, exclusive, unique, basename, digits, next) hold at most one value"}, testSingleValue, "attrs_new"},
		{Invariant{"attr-type", "every value of a key its driver declares has the declared type and minimum"}, testAttrTypes, "attrs_new"},
		{Invariant{"live-references", "connections, references, allocations and attributes belong to and point at live entities"}, testLiveReferences, ""},
		{Invariant{"one-parent", "an entity has at most one physical parent"}, testOneParent, "contains_new"},
		{Invariant{"parent-allowed", "a child's driver may sit in its parent's driver"}, testParentAllowed, "contains_new"},
		{Invariant{"contains-loop", "containment has no loops"}, testContainsLoop, "contains_new"},
		{Invariant{"member-loop", "group membership has no loops"}, testMemberLoop, "member_new"},
		{Invariant{"rack-fit", "a placed child's position and height lie inside its container's units 1..units"}, testRackFit, "contains_new rack_attrs"},
		{Invariant{"rack-overlap", "no two children of a container share a unit"}, testRackOverlap, "contains_new rack_attrs"},
		{Invariant{"port-one-link", "a port carries at most one link"}, testPortOneLink, "links"},
		{Invariant{"link-both-ends", "every link is stored from both of its ends"}, testLinkBothEnds, "links"},
		{Invariant{"link-ports", "a link joins ports its entities' drivers declare, of one type"}, testLinkPorts, "links"},
		{Invariant{"block-cidr", "an ip block has a canonical IPv4 or IPv6 network (never IPv4-mapped IPv6); one is required once it is nested, holds blocks or hands out addresses"}, testBlockCIDR, "contains_new block_attrs allocs"},
		{Invariant{"block-gateway", "a block's gateway lies inside it and is not its network or broadcast address"}, testBlockGateway, "block_attrs"},
		{Invariant{"block-inside-parent", "a child block lies strictly inside its parent block"}, testBlockInsideParent, "contains_new block_attrs"},
		{Invariant{"block-siblings", "the child blocks of a block do not overlap"}, testBlockSiblings, "contains_new block_attrs"},
		{Invariant{"allocation-inside-block", "an allocated address lies inside its block and matches its offset"}, testAllocationInsideBlock, "block_attrs allocs"},
		{Invariant{"allocation-reserved", "no block hands out its network or broadcast address (IPv4 up to /30) or its gateway"}, testAllocationReserved, "block_attrs allocs"},
		{Invariant{"allocation-in-child", "no block hands out an address inside one of its child blocks"}, testAllocationInChild, "contains_new block_attrs allocs"},
		{Invariant{"address-one-holder", "an address is handed out once in a block and its hierarchy, and an ip attribute holding an allocated address belongs to a holder of it"}, testAddressOneHolder, "allocs ip_attrs"},
		{Invariant{"allocation-attribute", "the holder of an allocated address carries it as its ip attribute (subkey: the interface)"}, testAllocationAttribute, "allocs ip_attrs"},
		{Invariant{"free-space-index", "the runs of allocated addresses (ip_runs) cover exactly the allocated addresses"}, testFreeSpaceIndex, "allocs"},
		{Invariant{"pool-exclusive", "a member of an exclusive pool is in no other pool"}, testPoolExclusive, "member_new pool_attrs"},
		{Invariant{"pool-unique", "a thing is in at most one unique pool"}, testPoolUnique, "member_new pool_attrs"},
		{Invariant{"name-counter", "a name manager's next number never goes below a number it held before"}, testNameCounter, "next_attrs"},
		{Invariant{"history", "each entity has one current row, versions chain, rows end after they start, and no row refers to a change not yet made"}, testHistory, ""},
	}
}

// checker runs the rules over one snapshot: the whole inventory, or what
// one write transaction changed.
type checker struct {
	ctx     context.Context
	q       Reader
	drivers *drivers.Registry
	// scoped limits the rules to what the transaction changed: the rows it
	// wrote (past startRid, by table) and those it ended (until at or past
	// firstCid), and what those rows touch.
	scoped   bool
	firstCid int64
	startRid map[string]int64
	rule     string
	problems []entity.Problem
	names    map[int64]string
	// What several rules read, loaded once per run.
	rackCache    *rackData
	blockCache   map[int64]*blockInfo
	scope        []*blockInfo
	blocksLoaded bool
	pools        []poolMember
	poolsLoaded  bool
	attrsDone    bool
	connsDone    bool
	ents         map[int64]ent
	// made holds the kinds of change a scoped run found (changeKinds);
	// passes that serve several rules skip reads of kinds not made.
	made map[string]bool
}

// didMake reports whether the transaction made changes of kind (always,
// for a whole check).
func (c *checker) didMake(kind string) bool { return !c.scoped || c.made[kind] }

// report records a problem of the rule being run.
func (c *checker) report(msg string, entities []string, values map[string]any) {
	c.reportAs(c.rule, msg, entities, values)
}

// reportAs records a problem of rule, found by a pass that serves several.
func (c *checker) reportAs(rule, msg string, entities []string, values map[string]any) {
	c.problems = append(c.problems, entity.Problem{Rule: rule, Message: msg, Entities: entities, Values: values})
}

// newRows is a condition that row alias of table was written by the
// transaction: its rowid is past the table's last one when the
// transaction began (rows of these tables are only ever appended, and
// rowids grow), a range of the primary key. For the whole inventory:
// every row.
func (c *checker) newRows(alias, table string) (string, []any) {
	if !c.scoped {
		return "1", nil
	}
	return alias + ".rid IN (SELECT rid FROM " + table + " NOT INDEXED WHERE rid > ?)", []any{c.startRid[table]}
}

// rows runs a query and calls fn for each row; fn scans it.
func (c *checker) rows(query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := c.q.QueryContext(c.ctx, query, args...)
	if err != nil {
		return entity.Internal("check "+c.rule, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return entity.Internal("check "+c.rule, err)
		}
	}
	return entity.Internal("check "+c.rule, rows.Err())
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

// changeKindsSQL says what kinds of change a transaction made, from the
// rows it wrote (?2-?5: the start rowids of entities, attrs, connections,
// ip_allocations) and ended (?1: its first change). A rule that looks only
// at changes of kinds the transaction did not make has nothing to look at
// and is not run: most commits (an address, an attribute) run a fraction
// of the rules.
const changeKindsSQL = `SELECT
	EXISTS (SELECT 1 FROM entities NOT INDEXED WHERE rid > ?2),
	EXISTS (SELECT 1 FROM attrs NOT INDEXED WHERE rid > ?3),
	EXISTS (SELECT 1 FROM connections NOT INDEXED WHERE rid > ?4 AND type = 'contains'),
	EXISTS (SELECT 1 FROM connections NOT INDEXED WHERE rid > ?4 AND type = 'member'),
	EXISTS (SELECT 1 FROM connections NOT INDEXED WHERE rid > ?4 AND type = 'link')
		OR EXISTS (SELECT 1 FROM connections INDEXED BY conn_ended WHERE until >= ?1 AND type = 'link'),
	EXISTS (SELECT 1 FROM ip_allocations NOT INDEXED WHERE rid > ?5)
		OR EXISTS (SELECT 1 FROM ip_allocations INDEXED BY ipalloc_ended WHERE until >= ?1),
	EXISTS (SELECT 1 FROM entities n NOT INDEXED WHERE n.rid > ?2 AND NOT EXISTS (
		SELECT 1 FROM entities o INDEXED BY entities_hist_id WHERE o.id = n.id AND o.until = n.since AND o.driver = n.driver)),
	EXISTS (SELECT 1 FROM entities x INDEXED BY entities_ended WHERE x.until >= ?1
		AND NOT EXISTS (SELECT 1 FROM entities y WHERE y.id = x.id AND y.until IS NULL)),
	EXISTS (SELECT 1 FROM connections NOT INDEXED WHERE rid > ?4),
	(SELECT coalesce(json_group_array(key), '[]') FROM (SELECT DISTINCT key FROM attrs NOT INDEXED WHERE rid > ?3 AND key IN (` + ruleKeySQL + `)
		UNION SELECT DISTINCT key FROM attrs INDEXED BY attrs_ended WHERE until >= ?1 AND key IN (` + ruleKeySQL + `)))`

// ruleKeySQL lists, as SQL, the attribute keys whose writes and ends
// changeKindsSQL reports: the rules' inputs, and ip.
const ruleKeySQL = `'units', 'height', 'cidr', 'gateway', 'exclusive', 'unique', 'next', 'ip'`

// keyKinds maps those keys to the kinds of change they are.
var keyKinds = map[string]string{"units": "rack_attrs", "height": "rack_attrs", "cidr": "block_attrs", "gateway": "block_attrs",
	"exclusive": "pool_attrs", "unique": "pool_attrs", "next": "next_attrs", "ip": "ip_attrs"}

// changeKinds names the columns of changeKindsSQL, then the kinds of the
// keys it lists. entities_driver: a row of an entity that is new, or whose
// driver differs from the row it follows (an entity's version moving
// writes a row with the same driver, which was registered). deletes: an
// entity ended without a current row after it. conns_new: any connection
// written.
var changeKinds = []string{"entities_new", "attrs_new", "contains_new", "member_new", "links", "allocs",
	"entities_driver", "deletes", "conns_new",
	"rack_attrs", "block_attrs", "pool_attrs", "next_attrs", "ip_attrs"}

// changeColumns is how many columns of changeKindsSQL are flags.
const changeColumns = 9

func (c *checker) run() error {
	made := map[string]bool{}
	if c.scoped {
		vals := make([]bool, changeColumns)
		var keys string
		ptrs := make([]any, 0, changeColumns+1)
		for i := range vals {
			ptrs = append(ptrs, &vals[i])
		}
		ptrs = append(ptrs, &keys)
		if err := c.q.QueryRowContext(c.ctx, changeKindsSQL, c.firstCid, c.startRid["entities"], c.startRid["attrs"],
			c.startRid["connections"], c.startRid["ip_allocations"]).Scan(ptrs...); err != nil {
			return entity.Internal("check rules", err)
		}
		for i, k := range changeKinds[:changeColumns] {
			made[k] = vals[i]
		}
		var written []string
		if err := json.Unmarshal([]byte(keys), &written); err != nil {
			return entity.Internal("check rules", err)
		}
		for _, k := range written {
			made[keyKinds[k]] = true
		}
	}
	c.made = made
	for _, inv := range invariants {
		if c.scoped && inv.needs != "" && !slices.ContainsFunc(strings.Fields(inv.needs), func(k string) bool { return made[k] }) {
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
func (s *Store) Check(ctx context.Context) ([]entity.Problem, error) {
	return s.CheckWith(ctx, s.drivers)
}

// CheckWith is Check with another driver registry: what the inventory's
// problems would be under those drivers.
func (s *Store) CheckWith(ctx context.Context, reg *drivers.Registry) ([]entity.Problem, error) {
	var problems []entity.Problem
	err := s.readTx(ctx, func(q Reader) error {
		var err error
		problems, err = checkAll(ctx, q, reg)
		return err
	})
	return problems, err
}

// CheckFile runs the checks of Check on a finished copy of a database
// (a backup) without writing to it: the file is opened immutable and
// read-only, so its bytes, and the SHA-256 its backup reported, stay as
// they were. A file of another schema version than this build's is
// refused: restoring it migrates a copy, which Restore checks.
func CheckFile(ctx context.Context, path string, reg *drivers.Registry) ([]entity.Problem, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, entity.Errorf(entity.KindNotFound, "backup %s does not exist", path)
	}
	if err := refuseLiveLog(path); err != nil {
		return nil, err
	}
	db, err := openImmutable(path)
	if err != nil {
		return nil, entity.Errorf(entity.KindInvalid, "backup %s: %v", path, err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, entity.Errorf(entity.KindInvalid, "backup %s is not an inventory: %v", path, err)
	}
	if version != schema.LatestVersion() {
		return nil, entity.Errorf(entity.KindInvalid, "backup %s has schema version %d and this build checks version %d: restore it (which migrates and checks a copy) or check it with the build that wrote it",
			path, version, schema.LatestVersion())
	}
	if reg == nil {
		reg = drivers.Builtin()
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, entity.Internal("begin read", err)
	}
	defer tx.Rollback()
	return checkAll(ctx, tx, reg)
}

// checkAll is the whole check: SQLite's own, then every rule.
func checkAll(ctx context.Context, q Reader, reg *drivers.Registry) ([]entity.Problem, error) {
	var problems []entity.Problem
	rows, err := q.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, entity.Internal("integrity check", err)
	}
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			rows.Close()
			return nil, entity.Internal("integrity check", err)
		}
		if msg != "ok" {
			problems = append(problems, entity.Problem{Rule: "sqlite-integrity", Message: msg})
		}
	}
	rows.Close()
	fk, err := q.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return nil, entity.Internal("foreign key check", err)
	}
	for fk.Next() {
		var table, parent string
		var rowid, idx sql.NullInt64
		if err := fk.Scan(&table, &rowid, &parent, &idx); err != nil {
			fk.Close()
			return nil, entity.Internal("foreign key check", err)
		}
		problems = append(problems, entity.Problem{Rule: "foreign-key", Message: fmt.Sprintf("%s row %d refers to a missing %s row", table, rowid.Int64, parent)})
	}
	fk.Close()
	c := &checker{ctx: ctx, q: q, drivers: reg}
	if err := c.run(); err != nil {
		return nil, err
	}
	return append(problems, c.problems...), nil
}

// checkCommit runs every rule over what this transaction changed. It
// runs last, after the transaction's pending writes (runs, versions) are
// out, on its own connection.
func (tx *Tx) checkCommit() error {
	from := tx.firstCid
	if from == 0 {
		// No change recorded: no row can have been ended by one of its.
		var latest sql.NullInt64
		if err := tx.queryRow("SELECT max(id) FROM changes").Scan(&latest); err != nil {
			return entity.Internal("check rules", err)
		}
		from = latest.Int64 + 1
	}
	c := &checker{ctx: tx.ctx, q: cached{tx}, drivers: tx.s.drivers, scoped: true, firstCid: from, startRid: tx.startRid}
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
func violation(problems []entity.Problem) error {
	p := problems[0]
	msg := fmt.Sprintf("refused: this would break rule %s: %s", p.Rule, p.Message)
	if len(problems) > 1 {
		msg += fmt.Sprintf(" (and %d more problems)", len(problems)-1)
	}
	return entity.Errorf(entity.KindConflict, "%s", msg).WithCode(entity.ReasonInvariant).
		With("rule", p.Rule).With("entities", p.Entities).With("problems", problems[:min(len(problems), maxReportedProblems)])
}

// ReloadDrivers reads the drivers file again and adopts what it defines
// only if it brings the inventory no broken rule it did not have (a rack
// driver's default units shrunk below a placed device, a port dropped
// that carries a link, a parent no longer allowed). The whole check runs
// under the drivers now and under the new ones, on the writer, so that no
// write slips in between the check and the swap. A file that breaks a
// rule is refused whole (conflict, code invariant) and the drivers stay
// as they were.
func (s *Store) ReloadDrivers(ctx context.Context, path string) error {
	staged, err := s.drivers.Staged(path)
	if err != nil {
		// The message names the file and the faulty definition: it is
		// the operator's own file.
		return entity.Errorf(entity.KindInvalid, "%s", err.Error())
	}
	if len(s.drivers.Changed(staged)) == 0 {
		return nil
	}
	return s.Update(ctx, "", func(tx *Tx) error {
		problem := func(reg *drivers.Registry) ([]entity.Problem, error) {
			c := &checker{ctx: tx.ctx, q: cached{tx}, drivers: reg}
			err := c.run()
			return c.problems, err
		}
		before, err := problem(s.drivers)
		if err != nil {
			return err
		}
		after, err := problem(staged)
		if err != nil {
			return err
		}
		had := map[string]bool{}
		for _, p := range before {
			had[p.Rule+"\x00"+p.Message] = true
		}
		var fresh []entity.Problem
		for _, p := range after {
			if !had[p.Rule+"\x00"+p.Message] {
				fresh = append(fresh, p)
			}
		}
		if len(fresh) > 0 {
			return fmt.Errorf("the drivers file %s does not fit the inventory: %w", path, violation(fresh))
		}
		s.drivers.Replace(staged)
		// The drivers order ports: any entity's links may read otherwise.
		tx.changedAll = true
		return nil
	})
}
