package store

import (
	"database/sql"
	"fmt"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// The passes: the rules that look at every row a transaction wrote share
// one read of each table, and learn the entities at the rows' ends from a
// cache filled by one read of the entities themselves, instead of a join
// for every row (a bulk load writes hundreds of thousands of rows).

// ent is an entity as the passes see it; live is false for an id that has
// no current row (deleted, or never was).
type ent struct {
	name, driver string
	live         bool
}

// entity returns what the checker knows of entity id.
func (c *checker) entity(id int64) (ent, error) {
	if err := c.preloadEntities(); err != nil {
		return ent{}, err
	}
	if e, ok := c.ents[id]; ok {
		return e, nil
	}
	e := ent{name: fmt.Sprintf("#%d", id)}
	err := c.q.QueryRowContext(c.ctx, "SELECT name, driver FROM entities WHERE id = ? AND until IS NULL", id).Scan(&e.name, &e.driver)
	switch {
	case err == nil:
		e.live = true
	case err != sql.ErrNoRows:
		return e, entity.Internal("check "+c.rule, err)
	}
	c.ents[id] = e
	return e, nil
}

// preloadEntities reads, once, the entities the passes meet most: every
// current one for a whole check; at commit those with a row written by
// the transaction (every entity it created or changed has one, its new
// version).
func (c *checker) preloadEntities() error {
	if c.ents != nil {
		return nil
	}
	c.ents = map[int64]ent{}
	q, args := "SELECT id, name, driver FROM entities WHERE until IS NULL", []any(nil)
	if c.scoped {
		q, args = "SELECT id, name, driver FROM entities NOT INDEXED WHERE rid > ? AND until IS NULL", []any{c.startRid["entities"]}
	}
	return c.rows(q, args, func(r *sql.Rows) error {
		var id int64
		e := ent{live: true}
		if err := r.Scan(&id, &e.name, &e.driver); err != nil {
			return err
		}
		c.ents[id] = e
		return nil
	})
}

// conn is one connection row as the connection pass reads it.
type conn struct {
	typ               string
	a, b              int64
	aPort, bPort, pty string
	// checked: written by the transaction (or any row, for a whole check),
	// so that every rule on connections looks at it; else it was read
	// only for the ends of a link or for a deleted entity.
	checked bool
}

// connPass reads, once per check, the connections that live-references,
// parent-allowed and the three link rules look at (every current one; or
// at commit those the transaction wrote, those naming an entity it
// deleted, and the links whose other end it ended), and reports the
// problems of all five.
func (c *checker) connPass() error {
	if c.connsDone {
		return nil
	}
	c.connsDone = true
	type read struct {
		s       scan
		checked bool
	}
	reads := []read{{scan{"connections c", "c.until IS NULL", nil}, true}}
	if c.scoped {
		// Only the reads that can find anything: rows written, rows naming
		// an entity deleted, and links whose other end was ended.
		reads = nil
		sus := c.suspects("c", "connections", "a", "b")
		if c.didMake("conns_new") {
			reads = append(reads, read{sus[0], true})
		}
		if len(sus) > 1 {
			reads = append(reads, read{sus[1], false})
		}
		if c.didMake("links") {
			// A link is left with one end by ending the other.
			reads = append(reads, read{scan{"connections c", `c.until IS NULL AND c.rid <= ? AND c.rid IN (SELECT y.rid FROM connections r INDEXED BY conn_ended
				CROSS JOIN connections y ON y.a = r.b AND y.type = 'link' AND y.a_port = r.b_port AND y.until IS NULL WHERE r.until >= ? AND r.type = 'link')`,
				[]any{c.startRid["connections"], c.firstCid}}, false})
		}
	}
	type end struct {
		a, b        int64
		port, bport string
		typ         string
	}
	var links []conn
	have := map[end]bool{}
	ports := map[end]int{} // links per (entity, port), for a whole check
	for _, rd := range reads {
		err := c.rows(`SELECT c.type, c.a, c.b, coalesce(c.a_port, ''), coalesce(c.b_port, ''), coalesce(c.port_type, '') FROM `+rd.s.from+` WHERE `+rd.s.where,
			rd.s.args, func(r *sql.Rows) error {
				x := conn{checked: rd.checked}
				if err := r.Scan(&x.typ, &x.a, &x.b, &x.aPort, &x.bPort, &x.pty); err != nil {
					return err
				}
				ea, err := c.entity(x.a)
				if err != nil {
					return err
				}
				eb, err := c.entity(x.b)
				if err != nil {
					return err
				}
				if !ea.live || !eb.live {
					c.reportAs("live-references", fmt.Sprintf("%s connection between %s and %s involves a deleted entity", x.typ, ea.name, eb.name), []string{ea.name, eb.name}, nil)
					return nil
				}
				switch x.typ {
				case entity.Contains:
					if x.checked {
						c.parentAllowed(ea, eb)
					}
				case "link":
					links = append(links, x)
					have[end{x.a, x.b, x.aPort, x.bPort, x.pty}] = true
					if !c.scoped {
						ports[end{a: x.a, port: x.aPort}]++
					}
				}
				return nil
			})
		if err != nil {
			return err
		}
	}
	crowded := map[end]bool{}
	for _, l := range links {
		ea, _ := c.entity(l.a) // cached above
		eb, _ := c.entity(l.b)
		if k := (end{a: l.a, port: l.aPort}); ports[k] > 1 && !crowded[k] {
			crowded[k] = true
			c.reportAs("port-one-link", fmt.Sprintf("port %s of %s carries %d links", l.aPort, ea.name, ports[k]), []string{ea.name}, map[string]any{"port": l.aPort})
		}
		// The reverse is mostly among the rows read: only the others are
		// looked up.
		reverse := have[end{l.b, l.a, l.bPort, l.aPort, l.pty}]
		if !reverse {
			if err := c.q.QueryRowContext(c.ctx, `SELECT EXISTS (SELECT 1 FROM connections r WHERE r.a = ? AND r.type = 'link' AND r.a_port = ? AND r.until IS NULL
				AND r.b = ? AND r.b_port = ? AND r.port_type IS ?)`, l.b, l.bPort, l.a, l.aPort, l.pty).Scan(&reverse); err != nil {
				return entity.Internal("check "+c.rule, err)
			}
		}
		if !reverse {
			c.reportAs("link-both-ends", fmt.Sprintf("link %s:%s -> %s:%s has no reverse row", ea.name, l.aPort, eb.name, l.bPort), []string{ea.name, eb.name}, nil)
		}
		if d := c.driverOf(ea.driver); d != nil && l.checked {
			p, ok := d.Port(l.aPort)
			switch {
			case !ok:
				c.reportAs("link-ports", fmt.Sprintf("%s is linked on port %s, which a %s does not have", ea.name, l.aPort, ea.driver), []string{ea.name, eb.name}, map[string]any{"port": l.aPort})
			case p.Type != l.pty:
				c.reportAs("link-ports", fmt.Sprintf("port %s of %s is a %s port but carries a %s link", l.aPort, ea.name, p.Type, l.pty), []string{ea.name, eb.name}, map[string]any{"port": l.aPort})
			}
		}
	}
	return nil
}

// parentAllowed reports a containment its drivers do not allow.
func (c *checker) parentAllowed(parent, child ent) {
	pd, cd := c.driverOf(parent.driver), c.driverOf(child.driver)
	if pd == nil || cd == nil || pd.Kind == drivers.Group || pd.MayContain(cd) {
		return
	}
	allowed := "nothing"
	if len(cd.Parents) > 0 {
		allowed = strings.Join(cd.Parents, ", ")
	}
	c.reportAs("parent-allowed", fmt.Sprintf("%s (a %s) is in %s (a %s); a %s may go in: %s", child.name, child.driver, parent.name, parent.driver, child.driver, allowed),
		[]string{child.name, parent.name}, nil)
}
