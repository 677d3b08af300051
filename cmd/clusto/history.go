package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clusto/clusto/client"
)

func (a *app) historyCmd() *cobra.Command {
	var since int64
	var limit int
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "The changes about a thing, oldest first",
		Long: `The changes about a thing, oldest first: its own, and those where it is the
other side of a connection. A deleted thing's history is found by its last
name. Every change is listed unless --limit says otherwise. -o names prints
the change numbers (for --at).`,
		Example: `  clusto history s0001
  clusto history s0001 --since 120 --limit 10
  clusto info s0001 --at $(clusto history s0001 -o names | tail -2 | head -1)`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			page := client.Page{Since: since, Limit: limit}
			var all client.Changes
			for {
				got, err := a.cli.History(a.ctx, args[0], page)
				if err != nil {
					return err
				}
				all.Changes = append(all.Changes, got.Changes...)
				all.Next = got.Next
				if limit > 0 || len(got.Changes) == 0 || got.Next == page.Since {
					break
				}
				page.Since = got.Next
			}
			if all.Changes == nil {
				all.Changes = []client.Change{}
			}
			return a.printChanges(&all, args[0])
		},
	}
	cmd.Flags().Int64Var(&since, "since", 0, "only changes after this change number")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many changes (1-1000)")
	return cmd
}

func (a *app) changesCmd() *cobra.Command {
	var since int64
	var limit int
	var follow bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "changes",
		Short: "The change log: the latest changes, or those after --since",
		Long: `The change log, oldest first. Without --since it shows the latest --limit
changes (20 by default); with --since N, up to --limit changes after N.
--follow then keeps printing new changes as they are made, until
interrupted. -o names prints the change numbers.`,
		Example: `  clusto changes
  clusto changes --since 100 --limit 50
  clusto changes --follow
  clusto changes -o json | jq -r '.changes[] | select(.actor == "alice") | .change'`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit == 0 {
				limit = 20
			}
			if !cmd.Flags().Changed("since") {
				h, err := a.cli.Health(a.ctx)
				if err != nil {
					return err
				}
				since = max(0, h.Change-int64(limit))
			}
			got, err := a.cli.Changes(a.ctx, client.Page{Since: since, Limit: limit})
			if err != nil {
				return err
			}
			if !follow {
				return a.printChanges(got, "")
			}
			// Following: JSON is one change a line (for jq), from the start.
			if err := a.printChangeRows(got.Changes, "", true); err != nil {
				return err
			}
			next, header := got.Next, len(got.Changes) == 0 && a.output == "table"
			for {
				select {
				case <-a.ctx.Done():
					return nil
				case <-time.After(interval):
				}
				page, err := a.cli.Changes(a.ctx, client.Page{Since: next, Limit: 1000})
				if err != nil {
					if a.ctx.Err() != nil {
						return nil
					}
					return err
				}
				if len(page.Changes) == 0 {
					continue
				}
				next = page.Next
				if err := a.printChangeRows(page.Changes, "", header); err != nil {
					return err
				}
				header = false
			}
		},
	}
	cmd.Flags().Int64Var(&since, "since", 0, "changes after this change number")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many changes (1-1000; default 20)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new changes")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "with --follow, how often to ask for new changes")
	return cmd
}

// printChanges shows a page of changes; about is the entity a history is
// about ("" for the change log), from whose side links are told.
func (a *app) printChanges(c *client.Changes, about string) error {
	if a.output == "json" {
		return a.printJSON(c)
	}
	return a.printChangeRows(c.Changes, about, true)
}

func (a *app) printChangeRows(cs []client.Change, about string, header bool) error {
	switch a.output {
	case "json":
		enc := json.NewEncoder(a.stdout)
		enc.SetEscapeHTML(false)
		for _, c := range cs {
			if err := enc.Encode(c); err != nil {
				return err
			}
		}
		return nil
	case "names":
		for _, c := range cs {
			a.println(c.Number)
		}
		return nil
	}
	t := newTable("CHANGE", "TIME", "ACTOR", "OP", "ENTITY", "WHAT").alignRight(0)
	for _, c := range cs {
		t.add(strconv.FormatInt(c.Number, 10), timeText(c.Time), c.Actor, c.Op, c.Entity, summarize(c, about))
	}
	if !header {
		// Following: the header was printed with the first rows.
		var buf bytes.Buffer
		a.renderTable(&buf, t, a.width(), "")
		out := buf.String()
		if i := strings.IndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
		fmt.Fprint(a.stdout, out)
		return nil
	}
	a.printTable(t)
	return nil
}

// summarize says in a few words what a change did; a cable is told from
// the side of about (the entity whose history it is), else from the
// change's entity.
func summarize(c client.Change, about string) string {
	if about == "" {
		about = c.Entity
	}
	obj := func(raw json.RawMessage) map[string]any {
		var m map[string]any
		json.Unmarshal(raw, &m)
		return m
	}
	attrs := func(raw json.RawMessage) []client.Attr {
		var as []client.Attr
		if json.Unmarshal(raw, &as) != nil {
			var one client.Attr
			if json.Unmarshal(raw, &one) == nil && one.Key != "" {
				as = []client.Attr{one}
			}
		}
		return as
	}
	kv := func(as []client.Attr) string {
		var parts []string
		for _, at := range as {
			parts = append(parts, attrText(at))
		}
		return strings.Join(parts, " ")
	}
	str := func(m map[string]any, k string) string {
		switch v := m[k].(type) {
		case string:
			return v
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
			return ""
		default:
			b, _ := json.Marshal(v)
			return string(b)
		}
	}
	before, after := obj(c.Before), obj(c.After)
	switch c.Op {
	case "create":
		s := str(after, "driver")
		if as := attrs(mustRaw(after["attrs"])); len(as) > 0 {
			s += " " + kv(as)
		}
		return s
	case "delete":
		return "was a " + str(before, "driver")
	case "rename":
		return str(before, "name") + " -> " + str(after, "name")
	case "attr_add":
		return "+" + kv(attrs(c.After))
	case "attr_set":
		old, cur := kv(attrs(c.Before)), kv(attrs(c.After))
		if old == "" {
			return cur
		}
		return old + " -> " + cur
	case "attr_del":
		return "-" + kv(attrs(c.Before))
	case "insert", "remove":
		m, word := after, "into"
		if c.Op == "remove" {
			m, word = before, "out of"
		}
		if str(m, "type") == "member" {
			if c.Entity == str(m, "group") {
				return word + " it: " + str(m, "member")
			}
			return word + " group " + str(m, "group")
		}
		where := str(m, "parent")
		if p := str(m, "position"); p != "" {
			pos, _ := strconv.ParseInt(p, 10, 64)
			h, _ := strconv.ParseInt(str(m, "height"), 10, 64)
			where += " " + client.Relation{Position: &pos, Height: &h}.Units()
		}
		if c.Entity == str(m, "parent") {
			return word + " it: " + str(m, "child")
		}
		return word + " " + where
	case "link", "unlink":
		m := after
		if c.Op == "unlink" {
			m = before
		}
		a, ap, b, bp := str(m, "a"), str(m, "a_port"), str(m, "b"), str(m, "b_port")
		if about == b {
			a, ap, b, bp = b, bp, a, ap
		}
		return a + ":" + ap + " <-> " + b + ":" + bp
	case "allocate", "release":
		m := after
		if c.Op == "release" {
			m = before
		}
		if addr := str(m, "address"); addr != "" {
			s := addr + " from " + str(m, "block")
			if c.Op == "release" {
				s = addr + " back to " + str(m, "block")
			}
			if i := str(m, "interface"); i != "" {
				s += " (" + i + ")"
			}
			return s
		}
		if set := attrs(mustRaw(m["set"])); len(set) > 0 {
			return "set " + kv(set)
		}
	}
	raw := c.After
	if len(raw) == 0 || string(raw) == "null" {
		raw = c.Before
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return ""
}

func mustRaw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
