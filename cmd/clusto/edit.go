package main

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clusto/clusto/client"
)

// attrArg is a KEY=VALUE (a string, which the server converts for keys the
// driver declares) or KEY:=JSON (a typed value) argument; KEY may be
// KEY.SUBKEY.
type attrArg struct {
	key, subkey string
	value       any
}

func parseAttrArg(s string) (attrArg, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return attrArg{}, usagef("%q is not KEY=VALUE (or KEY:=JSON for a number, boolean or JSON value)", s)
	}
	var val any = v
	if strings.HasSuffix(k, ":") {
		k = strings.TrimSuffix(k, ":")
		if !json.Valid([]byte(v)) {
			return attrArg{}, usagef("%s:=%s: the value is not valid JSON (a string needs quotes: %s:='\"text\"')", k, v, k)
		}
		val = json.RawMessage(v)
	}
	key, sub, _ := strings.Cut(k, ".")
	if key == "" {
		return attrArg{}, usagef("%q has an empty key", s)
	}
	return attrArg{key: key, subkey: sub, value: val}, nil
}

func parseAttrArgs(ss []string) ([]client.AttrInput, error) {
	var out []client.AttrInput
	for _, s := range ss {
		a, err := parseAttrArg(s)
		if err != nil {
			return nil, err
		}
		out = append(out, client.AttrInput{Key: a.key, Subkey: a.subkey, Value: a.value})
	}
	return out, nil
}

// done reports a write: the confirmation in table form, the API's answer
// with -o json, the name with -o names.
func (a *app) done(name string, jsonValue any, format string, args ...any) error {
	switch a.output {
	case "json":
		return a.printJSON(jsonValue)
	case "names":
		a.println(name)
		return nil
	}
	a.printf(format+"\n", args...)
	return nil
}

func changeText(n int64) string {
	if n == 0 {
		return ""
	}
	return ", change " + strconv.FormatInt(n, 10)
}

// changesText is ", changes 12-14" (or one change).
func changesText(first, last int64) string {
	if first == last || first == 0 {
		return changeText(last)
	}
	return ", changes " + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10)
}

func (a *app) createCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create DRIVER NAME [KEY=VALUE ...]",
		Short: "Create an entity with its first attributes",
		Long: `Create an entity of a driver (clusto drivers lists them) with its first
attributes, as one change. KEY=VALUE gives a string, which the server
converts for keys the driver declares (memory_gb=64 is an int for a server);
KEY:=JSON gives a typed value (rack_row:=7, managed:=true); KEY.SUBKEY=VALUE
sets a subkey.`,
		Example: `  clusto create server s0100 status=unallocated memory_gb=64 serial=SN0100
  clusto create pool canary
  clusto create server s0101 disk.sda=ssd tags:='["edge","new"]'`,
		Args:              args(2, -1),
		ValidArgsFunction: a.completeDrivers(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			attrs, err := parseAttrArgs(args[2:])
			if err != nil {
				return err
			}
			e, err := a.cli.Create(a.ctx, client.NewEntity{Name: args[1], Driver: args[0], Attrs: attrs})
			if err != nil {
				return err
			}
			return a.done(e.Name, e, "created %s (%s)%s", e.Name, e.Driver, changeText(e.Change))
		},
	}
	return cmd
}

func (a *app) deleteCmd() *cobra.Command {
	var cascade bool
	var ifMatch int64
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an entity",
		Long: `Delete an entity. One that still holds children or members, cables or
addresses is refused (exit 4) unless --cascade, which takes its children
and members out (they are not deleted), unplugs its cables and releases
its addresses, in the same change.`,
		Example: `  clusto delete s0100
  clusto delete rack999 --cascade`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := a.cli.Delete(a.ctx, args[0], cascade, ifMatch)
			if err != nil {
				return err
			}
			return a.done(d.Deleted, d, "deleted %s%s", d.Deleted, changeText(d.Change))
		},
	}
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also detach its children and members, cables and addresses")
	cmd.Flags().Int64Var(&ifMatch, "if-version", 0, "only if the entity is still at this version")
	return cmd
}

func (a *app) renameCmd() *cobra.Command {
	var ifMatch int64
	cmd := &cobra.Command{
		Use:   "rename OLD NEW",
		Short: "Rename an entity (references and history follow it)",
		Example: `  clusto rename s0100 web-07
  clusto rename switch101 sw-sfo1-101`,
		Args:              args(2, 2),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.cli.Rename(a.ctx, args[0], args[1], ifMatch)
			if err != nil {
				return err
			}
			return a.done(e.Name, e, "renamed %s to %s%s", args[0], e.Name, changeText(e.Change))
		},
	}
	cmd.Flags().Int64Var(&ifMatch, "if-version", 0, "only if the entity is still at this version")
	return cmd
}

func (a *app) insertCmd() *cobra.Command {
	var at, height int64
	cmd := &cobra.Command{
		Use:   "insert PARENT CHILD",
		Short: "Put a thing in a container (a server in a rack) or a group (a pool)",
		Long: `Put CHILD in PARENT: physical containment (a server in a rack, a rack in a
row), or membership when PARENT is a group (pool, role, class, service).
In a rack, --at is the lowest unit taken (1 is the bottom) and --height the
units taken (default: the child's height).`,
		Example: `  clusto insert rack101 s0100 --at 30
  clusto insert rack101 s0101 --at 32 --height 2
  clusto insert production s0100`,
		Args:              args(2, 2),
		ValidArgsFunction: a.completeEntities(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p client.Placement
			if cmd.Flags().Changed("at") {
				p.Position = &at
			}
			if cmd.Flags().Changed("height") {
				p.Height = &height
			}
			parent, err := a.cli.Insert(a.ctx, args[0], args[1], &p)
			if err != nil {
				return err
			}
			where := parent.Name
			for _, c := range parent.Children {
				if c.Name == args[1] && c.Units() != "" {
					where = c.Units() + " of " + parent.Name
				}
			}
			return a.done(args[1], parent, "put %s in %s%s", args[1], where, changeText(parent.Change))
		},
	}
	cmd.Flags().Int64Var(&at, "at", 0, "the lowest rack unit to take (1 is the bottom)")
	cmd.Flags().Int64Var(&height, "height", 0, "rack units taken (default: the child's height)")
	return cmd
}

func (a *app) removeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove PARENT CHILD",
		Short: "Take a thing out of a container or group",
		Example: `  clusto remove rack101 s0100
  clusto remove staging s0001`,
		Args:              args(2, 2),
		ValidArgsFunction: a.completeEntities(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			parent, err := a.cli.Remove(a.ctx, args[0], args[1], 0)
			if err != nil {
				return err
			}
			return a.done(args[1], parent, "took %s out of %s%s", args[1], parent.Name, changeText(parent.Change))
		},
	}
}

// endpoint splits NAME[:PORT] at its last colon (port names hold none).
func endpoint(s string) (name, port string) {
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func (a *app) connectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "connect A[:PORT] B[:PORT]",
		Short: "Cable a port of one thing to a port of another",
		Long: `Cable port PORT of A to port PORT of B. A side without a port gets its first
free port (in its driver's order) of the other side's port type; with no
port on either side, the type is the one both have free ports of and
either has the most of (nic for a switch, console for a console server,
power for a PDU).`,
		Example: `  clusto connect s0100:eth0 switch101:9
  clusto connect s0100 switch101          # first free nic ports
  clusto connect s0100 pdu101             # first free power ports
  clusto connect s0100:console cons101`,
		Args:              args(2, 2),
		ValidArgsFunction: a.completeEntities(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			an, ap := endpoint(args[0])
			bn, bp := endpoint(args[1])
			// The server chooses a missing port inside the same write as
			// the link, so two connects cannot pick the same free port.
			l, err := a.cli.Link(a.ctx, client.Cable{A: an, APort: ap, B: bn, BPort: bp})
			if err != nil {
				return err
			}
			c := l.Cable
			return a.done(c.A, l, "connected %s:%s to %s:%s (%s)%s", c.A, c.APort, c.B, c.BPort, c.Type, changeText(l.Change))
		},
	}
}

func (a *app) disconnectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect A[:PORT] B[:PORT]",
		Short: "Remove the cable between two things",
		Long: `Remove a cable. The ports may be left out when A and B share exactly one
cable.`,
		Example: `  clusto disconnect s0100 switch101
  clusto disconnect s0100:eth0 switch101:9`,
		Args:              args(2, 2),
		ValidArgsFunction: a.completeEntities(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			an, ap := endpoint(args[0])
			bn, bp := endpoint(args[1])
			l, err := a.cli.Unlink(a.ctx, client.Cable{A: an, APort: ap, B: bn, BPort: bp})
			if err != nil {
				return err
			}
			c := l.Cable
			return a.done(c.A, l, "disconnected %s:%s from %s:%s%s", c.A, c.APort, c.B, c.BPort, changeText(l.Change))
		},
	}
}
