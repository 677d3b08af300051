package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clusto/clusto/client"
	"github.com/clusto/clusto/entity"
)

func (a *app) attrCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attr",
		Short: "Read and change attributes (get, add, set, del)",
		Long: `Read and change an entity's attributes. Keys are multi-valued: add appends a
value, set replaces every value of a key, del removes a key or one value.
KEY.SUBKEY addresses a subkey. Values are sent as text, which the server
converts for keys the driver declares; --type chooses the type of others
(string, int, bool, time, ip, json, ref).`,
		Example: `  clusto attr get s0001
  clusto attr get s0001 memory_gb -o names
  clusto attr add s0001 disk ssd ssd hdd --number next
  clusto attr set s0001 status allocated
  clusto attr del s0001 disk --number 2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{msg: fmt.Sprintf("unknown attr subcommand %q; use get, add, set or del", args[0]), cmd: cmd.CommandPath()}
			}
			return &usageError{msg: "attr needs a subcommand: get, add, set or del", cmd: cmd.CommandPath()}
		},
	}
	cmd.AddCommand(a.attrGetCmd(), a.attrAddCmd(), a.attrSetCmd(), a.attrDelCmd())
	return cmd
}

func splitKey(k string) (key, subkey string) {
	key, subkey, _ = strings.Cut(k, ".")
	return key, subkey
}

// parseNumber reads --number: N, or "next" when allowed.
func parseNumber(s string, allowNext bool) (n *int64, next bool, err error) {
	if s == "" {
		return nil, false, nil
	}
	if s == "next" {
		if !allowNext {
			return nil, false, usagef("--number next only applies to attr add")
		}
		return nil, true, nil
	}
	v, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil || v < 0 {
		if allowNext {
			return nil, false, usagef("--number %q must be a whole number (0 or more) or next", s)
		}
		return nil, false, usagef("--number %q must be a whole number (0 or more)", s)
	}
	return &v, false, nil
}

// printAttrs shows attributes: a table, the values (-o names), or
// jsonValue.
func (a *app) printAttrs(attrs []client.Attr, merged bool, jsonValue any) error {
	switch a.output {
	case "json":
		return a.printJSON(jsonValue)
	case "names":
		for _, at := range attrs {
			a.println(at.Text())
		}
		return nil
	}
	t := attrTable(attrs, merged)
	a.printTable(t)
	return nil
}

// attrTable is KEY [NUMBER] VALUE TYPE [FROM]: NUMBER only when a value
// has one, FROM for a merged view.
func attrTable(attrs []client.Attr, merged bool) *table {
	numbered := false
	for _, at := range attrs {
		numbered = numbered || at.Number != nil
	}
	head := []string{"KEY"}
	if numbered {
		head = append(head, "NUMBER")
	}
	head = append(head, "VALUE", "TYPE")
	if merged {
		head = append(head, "FROM")
	}
	t := newTable(head...)
	for _, at := range attrs {
		row := []string{at.FullKey()}
		if numbered {
			row = append(row, numberText(at.Number))
		}
		row = append(row, at.Text(), string(at.Value.Type))
		if merged {
			row = append(row, at.From)
		}
		t.add(row...)
	}
	return t
}

func (a *app) attrGetCmd() *cobra.Command {
	var merged bool
	var at int64
	cmd := &cobra.Command{
		Use:   "get NAME [KEY]",
		Short: "Show an entity's attributes, or the values of one key",
		Long: `Show an entity's attributes, or those of KEY (or KEY.SUBKEY). -o names prints
the values alone, one a line. --merged includes the attributes inherited
from its containers and groups.`,
		Example: `  clusto attr get s0001
  clusto attr get s0001 memory_gb -o names
  clusto attr get s0001 region --merged`,
		Args:              args(1, 2),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var key, sub string
			if len(args) == 2 {
				key, sub = splitKey(args[1])
			}
			if merged {
				e, err := a.cli.Entity(a.ctx, args[0], &client.GetOptions{At: at, Merged: true})
				if err != nil {
					return err
				}
				var attrs []client.Attr
				for _, x := range e.Attrs {
					if (key == "" || x.Key == key) && (sub == "" || x.Subkey == sub) {
						attrs = append(attrs, x)
					}
				}
				if key != "" && len(attrs) == 0 {
					return &client.Error{Status: 404, Code: client.CodeNotFound, Message: e.Name + " has no attribute " + args[1] + ", nor inherits one"}
				}
				return a.printAttrs(attrs, true, &client.Attrs{Entity: e.Name, Version: e.Version, Attrs: nonNil(attrs)})
			}
			res, err := a.cli.Attrs(a.ctx, args[0], &client.AttrQuery{Key: key, Subkey: sub, At: at})
			if err != nil {
				return err
			}
			if key != "" && len(res.Attrs) == 0 {
				return &client.Error{Status: 404, Code: client.CodeNotFound, Message: res.Entity + " has no attribute " + args[1]}
			}
			return a.printAttrs(res.Attrs, false, res)
		},
	}
	cmd.Flags().BoolVar(&merged, "merged", false, "include attributes inherited from containers and groups")
	cmd.Flags().Int64Var(&at, "at", 0, "read as of this change number")
	return cmd
}

func nonNil(as []client.Attr) []client.Attr {
	if as == nil {
		return []client.Attr{}
	}
	return as
}

func (a *app) attrAddCmd() *cobra.Command {
	var typ, number string
	var ifMatch int64
	cmd := &cobra.Command{
		Use:   "add NAME KEY VALUE [VALUE...]",
		Short: "Add values to a key",
		Long: `Add one or more values to KEY (or KEY.SUBKEY); several values are added in
one transaction. Adding a value the entity already has is a conflict
(exit 4). --number next gives each value the key's next free number.`,
		Example: `  clusto attr add s0001 owner web-team
  clusto attr add s0001 disk ssd ssd --number next
  clusto attr add s0001 nic.eth2 52:54:00:aa:bb:cc
  clusto attr add s0001 rack_row 7 --type int`,
		Args:              args(3, -1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			num, next, err := parseNumber(number, true)
			if err != nil {
				return err
			}
			key, sub := splitKey(args[1])
			values := args[2:]
			if len(values) == 1 {
				res, err := a.cli.AddAttr(a.ctx, args[0], client.AttrInput{Key: key, Subkey: sub, Number: num, NextNumber: next,
					Value: values[0], Type: typ}, ifMatch)
				if err != nil {
					return err
				}
				added := values[0]
				if res.Added != nil {
					added = attrText(*res.Added)
				}
				return a.done(res.Entity, res, "%s: added %s%s", res.Entity, added, changeText(res.Change))
			}
			// Several values: one batch, all or none.
			if ifMatch > 0 {
				return usagef("--if-version takes one value at a time")
			}
			ops := make([]client.Op, len(values))
			for i, v := range values {
				raw, _ := json.Marshal(v)
				ops[i] = client.Op{Op: "attr_add", Name: args[0], Key: key, Number: num, AutoNumber: next, Value: raw, Type: entity.ValueType(typ)}
				if sub != "" {
					ops[i].Subkey = &sub
				}
			}
			res, err := a.cli.Batch(a.ctx, ops, false)
			if err != nil {
				return err
			}
			var texts []string
			var first, last int64
			for _, r := range res.Results {
				for _, c := range r.Changes {
					var at client.Attr
					if json.Unmarshal(c.After, &at) == nil && at.Key != "" {
						texts = append(texts, attrText(at))
					}
					if first == 0 {
						first = c.Number
					}
					last = c.Number
				}
			}
			return a.done(args[0], res, "%s: added %s%s", args[0], strings.Join(texts, ", "), changesText(first, last))
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "the values' type: string, int, bool, time, ip, json or ref")
	cmd.Flags().StringVar(&number, "number", "", "the attribute number, or next for the key's next free number")
	cmd.Flags().Int64Var(&ifMatch, "if-version", 0, "only if the entity is still at this version")
	cmd.RegisterFlagCompletionFunc("type", fixedCompletion("string", "int", "bool", "time", "ip", "json", "ref"))
	return cmd
}

// attrText is key[.subkey][#number]=value.
func attrText(at client.Attr) string {
	s := at.FullKey()
	if at.Number != nil {
		s += "#" + strconv.FormatInt(*at.Number, 10)
	}
	return s + "=" + at.Text()
}

func (a *app) attrSetCmd() *cobra.Command {
	var typ, number string
	var ifMatch int64
	cmd := &cobra.Command{
		Use:   "set NAME KEY VALUE [VALUE...]",
		Short: "Replace every value of a key",
		Long: `Replace every value of KEY (or of KEY.SUBKEY, or of the --number given) with
the values given, as one change.`,
		Example: `  clusto attr set s0001 status allocated
  clusto attr set s0001 dns ns1.example.com ns2.example.com
  clusto attr set s0001 disk.sda ssd --number 0`,
		Args:              args(3, -1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			num, _, err := parseNumber(number, false)
			if err != nil {
				return err
			}
			key, sub := splitKey(args[1])
			vals := make([]any, 0, len(args)-2)
			for _, v := range args[2:] {
				vals = append(vals, v) // text: --type or the declared type converts it
			}
			res, err := a.cli.SetAttr(a.ctx, args[0], client.SetAttrRequest{Key: key, Subkey: sub, Number: num, Values: vals, Type: typ, IfMatch: ifMatch})
			if err != nil {
				return err
			}
			var texts []string
			for _, at := range res.Attrs {
				if at.Key == key && (sub == "" || at.Subkey == sub) && (num == nil || (at.Number != nil && *at.Number == *num)) {
					texts = append(texts, attrText(at))
				}
			}
			return a.done(res.Entity, res, "%s: set %s%s", res.Entity, strings.Join(texts, ", "), changeText(res.Change))
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "the values' type: string, int, bool, time, ip, json or ref")
	cmd.Flags().StringVar(&number, "number", "", "replace only the values with this number, and number the new ones so")
	cmd.Flags().Int64Var(&ifMatch, "if-version", 0, "only if the entity is still at this version")
	cmd.RegisterFlagCompletionFunc("type", fixedCompletion("string", "int", "bool", "time", "ip", "json", "ref"))
	return cmd
}

func (a *app) attrDelCmd() *cobra.Command {
	var number string
	var ifMatch int64
	cmd := &cobra.Command{
		Use:   "del NAME KEY [VALUE]",
		Short: "Delete a key, or one value of it",
		Long: `Delete every value of KEY (or KEY.SUBKEY), or only VALUE, or only the value
with --number N. Nothing matching is not found (exit 3).`,
		Example: `  clusto attr del s0001 owner
  clusto attr del s0001 disk hdd
  clusto attr del s0001 disk --number 2`,
		Aliases:           []string{"delete", "rm"},
		Args:              args(2, 3),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			num, _, err := parseNumber(number, false)
			if err != nil {
				return err
			}
			key, sub := splitKey(args[1])
			req := client.DelAttrRequest{Key: key, Subkey: sub, Number: num, IfMatch: ifMatch}
			if len(args) == 3 {
				req.Value = &args[2]
			}
			res, err := a.cli.DelAttr(a.ctx, args[0], req)
			if err != nil {
				return err
			}
			var texts []string
			for _, at := range res.Removed {
				texts = append(texts, attrText(at))
			}
			return a.done(res.Entity, res, "%s: deleted %s%s", res.Entity, strings.Join(texts, ", "), changeText(res.Change))
		},
	}
	cmd.Flags().StringVar(&number, "number", "", "delete only the value with this number")
	cmd.Flags().Int64Var(&ifMatch, "if-version", 0, "only if the entity is still at this version")
	return cmd
}
