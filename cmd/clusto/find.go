package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clusto/clusto/client"
	"github.com/clusto/clusto/entity"
)

// entityRow is an entity as a table row: NAME DRIVER IN GROUPS, then the
// values of the attribute columns asked for.
func entityRow(e *entity.Entity, attrCols []string) []string {
	in := ""
	if p, ok := e.Parent(); ok {
		in = p.Name
		if u := p.Units(); u != "" {
			in += " " + u
		}
	}
	var groups []string
	for _, g := range e.Groups() {
		groups = append(groups, g.Name)
	}
	row := []string{e.Name, e.Driver, in, strings.Join(groups, ",")}
	for _, k := range attrCols {
		key, sub, _ := strings.Cut(k, ".")
		row = append(row, strings.Join(e.AttrValues(key, sub), ","))
	}
	return row
}

func entityTable(attrCols []string) *table {
	head := []string{"NAME", "DRIVER", "IN", "GROUPS"}
	for _, k := range attrCols {
		head = append(head, strings.ToUpper(k))
	}
	return newTable(head...)
}

// printEntities shows a list of entities in the chosen format; jsonValue is
// what -o json prints.
func (a *app) printEntities(es []entity.Entity, attrCols []string, jsonValue any) error {
	switch a.output {
	case "json":
		return a.printJSON(jsonValue)
	case "names":
		for _, e := range es {
			a.println(e.Name)
		}
		return nil
	}
	if len(es) == 0 {
		fmt.Fprintln(a.stderr, "clusto: nothing matches")
		return nil
	}
	t := entityTable(attrCols)
	for i := range es {
		t.add(entityRow(&es[i], attrCols)...)
	}
	a.printTable(t)
	return nil
}

func (a *app) queryCmd() *cobra.Command {
	var limit int
	var all, explain, exactTotal bool
	var at int64
	var attrCols []string
	cmd := &cobra.Command{
		Use:     "query EXPR",
		Aliases: []string{"q"},
		Short:   "Find entities with the query language",
		Long: `Find entities with the query language (docs/query.md). The words of EXPR
are joined with spaces, so quoting it is optional unless the shell would
change it.

Without --all, one page is shown (--limit, or the server's default page)
and a note on stderr says when there are more, and how many match: past
1,000, "at least 1000" unless --exact-total asks the server to count them
all (the cost of counting grows with the matches).`,
		Example: `  clusto query 'driver:server and attr:status,unallocated'
  clusto q driver:server in name:rack101 -o names
  clusto query 'pool:production and attr:memory_gb>=128' -a memory_gb -a status
  clusto query 'driver:server' --all -o names | xargs -n1 clusto locate
  clusto query 'driver:server' --at 120      # as things were after change 120
  clusto query 'role:db' --explain           # the SQL it runs`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.query = strings.Join(args, " ")
			q := client.Query{Q: a.query, Limit: limit, At: at}
			if exactTotal {
				q.Total = entity.TotalExact
			}
			if explain {
				ex, err := a.cli.Explain(a.ctx, q)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(ex)
				}
				a.println(ex.SQL)
				for i, arg := range ex.Args {
					a.printf("-- ?%d = %v\n", i+1, formatArg(arg))
				}
				if len(ex.Plan) > 0 {
					a.println("-- plan:")
					for _, p := range ex.Plan {
						a.println("--   " + p)
					}
				}
				return nil
			}
			var res *client.Results
			var err error
			switch {
			case a.output == "names" && len(attrCols) == 0:
				// Names need no more than the query reads.
				res, err = a.querySummary(q, all)
			case all:
				res, err = a.cli.QueryAll(a.ctx, q)
			default:
				res, err = a.cli.Query(a.ctx, q)
			}
			if err != nil {
				return err
			}
			if err := a.printEntities(res.Results, attrCols, res); err != nil {
				return err
			}
			if res.NextCursor != "" && a.output != "json" {
				fmt.Fprintln(a.stderr, moreNote(len(res.Results), res.Total, res.TotalAtLeast))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&limit, "limit", 0, "at most this many results (with --all: the page size)")
	f.BoolVar(&all, "all", false, "follow the cursors to the last page")
	f.Int64Var(&at, "at", 0, "read as of this change number")
	f.BoolVar(&explain, "explain", false, "show the SQL the query runs instead of its results")
	f.BoolVar(&exactTotal, "exact-total", false, "count every match for the total (by default the server counts up to 1,000 and says \"at least\" past them)")
	f.StringSliceVarP(&attrCols, "attr", "a", nil, "add a column with this attribute's values (KEY or KEY.SUBKEY; repeatable)")
	return cmd
}

// moreNote is the note under a page of a query that has more: how many
// it shows of how many match (at least, when the server counted no
// further).
func moreNote(shown, total int, atLeast bool) string {
	of := fmt.Sprint(total)
	if atLeast {
		of = "at least " + of
	}
	return fmt.Sprintf("clusto: showing %d of %s; use --all for every match, or --limit N", shown, of)
}

func formatArg(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func (a *app) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get TERM",
		Short: "Find a thing by name, IP address, MAC address or serial number",
		Long: `Find the one entity a term names: its name, an IP address it holds, its MAC
address (any common spelling) or its serial number. A term that matches
several entities is a conflict (exit 4) that lists them.`,
		Example: `  clusto get s0001
  clusto get 10.1.1.12
  clusto get 52-54-00-01-01-00
  clusto get SN339563 -o json | jq .attrs`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, by, err := a.cli.Lookup(a.ctx, args[0])
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(e)
			case "names":
				a.println(e.Name)
				return nil
			}
			t := newTable("NAME", "DRIVER", "IN", "GROUPS", "MATCHED BY")
			t.add(append(entityRow(&e.Entity, nil), by)...)
			a.printTable(t)
			return nil
		},
	}
}

func (a *app) infoCmd() *cobra.Command {
	var merged bool
	var at int64
	cmd := &cobra.Command{
		Use:   "info NAME",
		Short: "Show an entity: driver, attributes, parents, children and links",
		Long: `Show an entity: its driver and kind, its attributes, what it is in and which
groups it belongs to (with rack positions), what it holds, and its cables.
--merged adds the attributes it inherits from its containers and groups,
with a FROM column naming where each comes from.`,
		Example: `  clusto info s0001
  clusto info s0001 --merged
  clusto info s0001 --at 40 -o json`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.cli.Entity(a.ctx, args[0], &client.GetOptions{At: at, Merged: merged})
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(e)
			case "names":
				a.println(e.Name)
				return nil
			}
			a.printInfo(e, merged)
			return nil
		},
	}
	cmd.Flags().BoolVar(&merged, "merged", false, "include attributes inherited from containers and groups")
	cmd.Flags().Int64Var(&at, "at", 0, "read as of this change number")
	return cmd
}

func (a *app) section(title string) {
	a.println()
	a.println(a.paint(a.stdout, bold, title))
}

func (a *app) printInfo(e *client.Entity, merged bool) {
	field := func(k, v string) { a.printf("%-9s %s\n", k+":", v) }
	field("Name", e.Name)
	field("Driver", e.Driver+" ("+string(e.Kind)+")")
	field("Version", strconv.FormatInt(e.Version, 10))
	field("Created", timeText(e.CreatedAt))
	field("Updated", timeText(e.UpdatedAt))

	a.section("Attributes:")
	if len(e.Attrs) == 0 {
		a.println("  (none)")
	} else {
		t := attrTable(e.Attrs, merged)
		a.renderTable(a.stdout, t, a.width(), "  ")
	}

	a.section("Parents:")
	a.relations(e.Parents)
	a.section("Children:")
	a.relations(e.Children)

	a.section("Links:")
	if len(e.Links) == 0 {
		a.println("  (none)")
		return
	}
	t := newTable("PORT", "TYPE", "PEER", "PEER PORT")
	for _, l := range e.Links {
		t.add(l.Port, l.Type, l.Peer, l.PeerPort)
	}
	a.renderTable(a.stdout, t, a.width(), "  ")
}

func (a *app) relations(rs []client.Relation) {
	if len(rs) == 0 {
		a.println("  (none)")
		return
	}
	t := newTable("TYPE", "NAME", "DRIVER", "UNITS")
	for _, r := range rs {
		t.add(r.Type, r.Name, r.Driver, r.Units())
	}
	a.renderTable(a.stdout, t, a.width(), "  ")
}

func numberText(n *int64) string {
	if n == nil {
		return ""
	}
	return strconv.FormatInt(*n, 10)
}

func (a *app) locateCmd() *cobra.Command {
	var at int64
	cmd := &cobra.Command{
		Use:   "locate NAME",
		Short: "Where a thing is and what it is plugged into",
		Long: `Where a thing is: a line per cable of its own, then a line per container up
to the top. -o names prints the path (the thing, then its containers).`,
		Example: `  $ clusto locate s0001
  s0001 -> connected to port 1 on switch101
  s0001 -> connected to port 1 on cons101
  s0001 -> connected to port 1 on pdu101
  s0001 -> in RU10 of rack101
  rack101 -> in row sfo1-row1
  sfo1-row1 -> in room sfo1-room1
  sfo1-room1 -> in datacenter sfo1`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			loc, err := a.cli.Locate(a.ctx, args[0], at)
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(loc)
			case "names":
				for _, p := range loc.Path {
					a.println(p)
				}
				return nil
			}
			for _, l := range loc.Lines {
				a.println(l.Text)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&at, "at", 0, "read as of this change number")
	return cmd
}

func (a *app) consoleCmd() *cobra.Command {
	var at int64
	cmd := &cobra.Command{
		Use:   "console NAME",
		Short: "Which console server port a thing's console is on",
		Long: `Which console server, and which of its ports, a thing's console ports are
cabled to. -o names prints the console servers.`,
		Example: `  clusto console s0001
  ssh admin@$(clusto console s0001 -o names)`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.cli.Console(a.ctx, args[0], at)
			if err != nil {
				return err
			}
			var rows [][3]string
			for _, l := range c.Consoles {
				rows = append(rows, [3]string{l.Port, l.ConsoleServer, l.ConsolePort})
			}
			return a.printCabling(c, rows, [3]string{"PORT", "CONSOLE SERVER", "CONSOLE PORT"},
				c.Entity+" has no console port cabled to a console server")
		},
	}
	cmd.Flags().Int64Var(&at, "at", 0, "read as of this change number")
	return cmd
}

// printCabling prints what console and power answer: the answer as JSON,
// the far ends' names (-o names), or a table of the thing's port, the far
// end and its port; none goes to stderr when nothing is cabled.
func (a *app) printCabling(answer any, rows [][3]string, head [3]string, none string) error {
	switch a.output {
	case "json":
		return a.printJSON(answer)
	case "names":
		for _, r := range rows {
			a.println(r[1])
		}
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintf(a.stderr, "clusto: %s\n", none)
		return nil
	}
	t := newTable(head[:]...)
	for _, r := range rows {
		t.add(r[:]...)
	}
	a.printTable(t)
	return nil
}

func (a *app) powerCmd() *cobra.Command {
	var at int64
	cmd := &cobra.Command{
		Use:   "power NAME",
		Short: "Which PDU outlets a thing's power supplies are on",
		Long: `Which PDUs, and which of their outlets, a thing's power ports are cabled to.
-o names prints the PDUs.`,
		Example: `  clusto power s0001
  clusto power s0001 -o json | jq -r '.power[] | "\(.pdu) \(.outlet)"'`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.cli.Power(a.ctx, args[0], at)
			if err != nil {
				return err
			}
			var rows [][3]string
			for _, l := range p.Power {
				rows = append(rows, [3]string{l.Port, l.PDU, l.Outlet})
			}
			return a.printCabling(p, rows, [3]string{"PORT", "PDU", "OUTLET"},
				p.Entity+" has no power port cabled to a PDU")
		},
	}
	cmd.Flags().Int64Var(&at, "at", 0, "read as of this change number")
	return cmd
}

// querySummary is a query (one page, or every page with all) in the
// summary view, as Results of entities that carry only their names,
// drivers, kinds and versions: what -o names needs.
func (a *app) querySummary(q client.Query, all bool) (*client.Results, error) {
	out := &client.Results{Results: []entity.Entity{}}
	for {
		page, err := a.cli.QuerySummary(a.ctx, q)
		if err != nil {
			return nil, err
		}
		for _, m := range page.Results {
			out.Results = append(out.Results, entity.Entity{Name: m.Name, Driver: m.Driver, Kind: m.Kind, Version: m.Version})
		}
		out.Total, out.TotalAtLeast, out.NextCursor = page.Total, page.TotalAtLeast, page.NextCursor
		if !all || page.NextCursor == "" || page.NextCursor == q.Cursor {
			if all {
				// Every match read: the total is how many.
				out.Total, out.TotalAtLeast, out.NextCursor = len(out.Results), false, ""
			}
			return out, nil
		}
		q.Cursor = page.NextCursor
	}
}
