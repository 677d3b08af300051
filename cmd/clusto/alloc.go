package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clusto/clusto/client"
	"github.com/clusto/clusto/entity"
)

func (a *app) allocateCmd() *cobra.Command {
	var count int
	var distinct string
	var set []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "allocate EXPR --count N [--distinct DRIVER] [--set KEY=VALUE ...] [--dry-run]",
		Short: "Claim things: entities matching a query, addresses, rack units, names",
		Long: `Claim COUNT entities matching the query EXPR and set attributes on them, as
one change that no concurrent allocation can overlap. --distinct rack takes
each from a different rack. Too few matches is a conflict (exit 4) that says
how many there are; --dry-run shows what would be claimed.

The subcommands hand out addresses (allocate ip), rack units (allocate ru)
and new names (allocate name). Every allocation is sent with an
Idempotency-Key, so that a retry after a lost answer cannot claim twice.`,
		Example: `  clusto allocate 'driver:server and attr:status,unallocated' --count 4 --distinct rack --set status=allocated
  clusto allocate 'pool:staging and attr:memory_gb>=128' --count 2 --set status=allocated --set owner=db-team --dry-run
  clusto allocate ip rack101-net s0001 --interface eth0
  clusto allocate ru rack101 s0100 --height 2
  clusto allocate name servers --driver server --count 3 status=unallocated`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &usageError{msg: "allocate needs a query, or ip, ru or name", cmd: cmd.CommandPath()}
			}
			a.query = strings.Join(args, " ")
			setMap := map[string]any{}
			for _, s := range set {
				at, err := parseAttrArg(s)
				if err != nil {
					return err
				}
				k := at.key
				if at.subkey != "" {
					return usagef("--set %s: subkeys cannot be set by a query allocation", s)
				}
				setMap[k] = at.value
			}
			if count < 1 {
				return usagef("--count %d must be 1 or more", count)
			}
			es, err := a.cli.Allocate(a.ctx, client.AllocateRequest{Query: a.query, Count: count, Distinct: distinct, Set: setMap,
				DryRun: dryRun, IdempotencyKey: client.NewIdempotencyKey()})
			if err != nil {
				return err
			}
			if err := a.printEntities(withoutChange(es), setKeys(set), map[string]any{"results": es}); err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintln(a.stderr, "clusto: dry run: nothing was claimed")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVarP(&count, "count", "n", 1, "how many to claim")
	f.StringVar(&distinct, "distinct", "", "take each from a different container of this driver (rack, row, ...)")
	f.StringArrayVar(&set, "set", nil, "KEY=VALUE (or KEY:=JSON) to set on each one claimed; repeatable")
	f.BoolVar(&dryRun, "dry-run", false, "show what would be claimed, and claim nothing")
	cmd.AddCommand(a.allocateIPCmd(), a.allocateRUCmd(), a.allocateNameCmd())
	return cmd
}

// withoutChange are the entities an allocation answered, as printEntities
// takes them.
func withoutChange(es []client.Entity) []entity.Entity {
	out := make([]entity.Entity, len(es))
	for i, e := range es {
		out[i] = e.Entity
	}
	return out
}

// setKeys are the keys of --set arguments, shown as columns.
func setKeys(set []string) []string {
	var keys []string
	for _, s := range set {
		k, _, _ := strings.Cut(s, "=")
		keys = append(keys, strings.TrimSuffix(k, ":"))
	}
	return keys
}

func (a *app) printAllocations(as []client.IPAllocation, jsonValue any) error {
	switch a.output {
	case "json":
		return a.printJSON(jsonValue)
	case "names":
		for _, x := range as {
			a.println(x.Address)
		}
		return nil
	}
	t := newTable("ADDRESS", "BLOCK", "ENTITY", "INTERFACE")
	for _, x := range as {
		t.add(x.Address, x.Block, x.Entity, x.Interface)
	}
	a.printTable(t)
	return nil
}

func (a *app) allocateIPCmd() *cobra.Command {
	var count int
	var address, iface string
	cmd := &cobra.Command{
		Use:   "ip BLOCK ENTITY",
		Short: "Hand out addresses of a block to an entity",
		Long: `Hand out the lowest free addresses of BLOCK (or --address) to ENTITY. A full
block is a conflict (exit 4). -o names prints the addresses.`,
		Example: `  clusto allocate ip rack101-net s0001 --interface eth0
  clusto allocate ip rack101-net s0001 --address 10.1.1.50
  clusto allocate ip rack101-net s0001 --count 4 -o names`,
		Args:              args(2, 2),
		ValidArgsFunction: a.completeEntities(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := a.cli.AllocateIP(a.ctx, args[0], client.IPRequest{Entity: args[1], Count: count, Address: address, Interface: iface,
				IdempotencyKey: client.NewIdempotencyKey()})
			if err != nil {
				return err
			}
			return a.printAllocations(as, map[string]any{"allocations": as})
		},
	}
	cmd.Flags().IntVarP(&count, "count", "n", 0, "how many addresses (default 1)")
	cmd.Flags().StringVar(&address, "address", "", "this address, if it is free")
	cmd.Flags().StringVar(&iface, "interface", "", "the interface the address is for (eth0)")
	return cmd
}

func (a *app) allocateRUCmd() *cobra.Command {
	var height, at int64
	cmd := &cobra.Command{
		Use:   "ru RACK ENTITY",
		Short: "Place an entity in free rack units",
		Long: `Place ENTITY in RACK: in the lowest free units that fit its height (or
--height), or at --at. A full rack is a conflict (exit 4).`,
		Example: `  clusto allocate ru rack101 s0100
  clusto allocate ru rack101 s0101 --height 2 --at 30`,
		Args:              args(2, 2),
		ValidArgsFunction: a.completeEntities(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := client.RackRequest{Entity: args[1], IdempotencyKey: client.NewIdempotencyKey()}
			if cmd.Flags().Changed("height") {
				req.Height = &height
			}
			if cmd.Flags().Changed("at") {
				req.Position = &at
			}
			e, err := a.cli.AllocateRackUnits(a.ctx, args[0], req)
			if err != nil {
				return err
			}
			where := args[0]
			if p, ok := e.Parent(); ok {
				where = p.Units() + " of " + p.Name
			}
			return a.done(e.Name, map[string]any{"results": []*client.Entity{e}}, "put %s in %s%s", e.Name, where, changeText(e.Change))
		},
	}
	cmd.Flags().Int64Var(&height, "height", 0, "units to take (default: the entity's height)")
	cmd.Flags().Int64Var(&at, "at", 0, "the lowest unit to take (default: the lowest free range that fits)")
	return cmd
}

func (a *app) allocateNameCmd() *cobra.Command {
	var driver string
	var count int
	cmd := &cobra.Command{
		Use:   "name MANAGER --driver DRIVER [KEY=VALUE ...]",
		Short: "Create entities named by a name manager",
		Long: `Create COUNT new entities of DRIVER, named by the name manager MANAGER
(basename and the next number: s0033, s0034, ...), each with the attributes
given. Names are never reused.`,
		Example: `  clusto allocate name servers --driver server
  clusto allocate name servers --driver server --count 3 status=unallocated memory_gb=64 -o names`,
		Args:              args(1, -1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver == "" {
				return usagef("--driver is required: the driver of the new entities")
			}
			attrs := map[string]any{}
			var cols []string
			for _, s := range args[1:] {
				at, err := parseAttrArg(s)
				if err != nil {
					return err
				}
				if at.subkey != "" {
					return usagef("%s: a name manager takes KEY=VALUE without subkeys", s)
				}
				attrs[at.key] = at.value
				cols = append(cols, at.key)
			}
			es, err := a.cli.AllocateNames(a.ctx, args[0], client.NameRequest{Driver: driver, Count: count, Attrs: attrs,
				IdempotencyKey: client.NewIdempotencyKey()})
			if err != nil {
				return err
			}
			return a.printEntities(withoutChange(es), cols, map[string]any{"results": es})
		},
	}
	cmd.Flags().StringVar(&driver, "driver", "", "the driver of the new entities (required)")
	cmd.Flags().IntVarP(&count, "count", "n", 1, "how many")
	cmd.RegisterFlagCompletionFunc("driver", a.completeDrivers(-1))
	return cmd
}

func (a *app) releaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release ip BLOCK ADDRESS",
		Short: "Give an address back to its block",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{msg: fmt.Sprintf("unknown release subcommand %q; use: release ip BLOCK ADDRESS", args[0]), cmd: cmd.CommandPath()}
			}
			return &usageError{msg: "release needs a subcommand: ip", cmd: cmd.CommandPath()}
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:               "ip BLOCK ADDRESS",
		Short:             "Give an address back to its block",
		Example:           `  clusto release ip rack101-net 10.1.1.20`,
		Args:              args(2, 2),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := a.cli.ReleaseIP(a.ctx, args[0], args[1])
			if err != nil {
				return err
			}
			if a.output == "table" {
				for _, x := range as {
					a.printf("released %s from %s (held by %s)\n", x.Address, x.Block, x.Entity)
				}
				return nil
			}
			return a.printAllocations(as, map[string]any{"allocations": as})
		},
	})
	return cmd
}

func (a *app) elevationCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "elevation RACK",
		Short: "Draw a rack, one line a unit, top unit first",
		Long: `Draw a rack as text, one line a unit from the top down: the device in each
unit (its name on every unit it takes, its driver and units on its top
one) or nothing when the unit is free. Things in the rack without a
position are listed under it. -o names prints the devices, top first.`,
		Example: `  clusto elevation rack101
  clusto elevation rack101 -o json | jq .free`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			el, err := a.cli.Elevation(a.ctx, args[0])
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(el)
			case "names":
				seen := map[string]bool{}
				for _, u := range el.Rows {
					if u.Device != "" && !seen[u.Device] {
						seen[u.Device] = true
						a.println(u.Device)
					}
				}
				for _, n := range el.Unplaced {
					a.println(n)
				}
				return nil
			}
			a.drawRack(el)
			return nil
		},
	}
}

// drawRack draws an elevation:
//
//	rack101: 42U, 24 free
//	    +--------------+
//	 42 | switch101    | switch
//	 41 |              |
//	  2 | pdu101       | pdu RU1-2
//	  1 | pdu101       |
//	    +--------------+
func (a *app) drawRack(el *client.Elevation) {
	inner := 12
	for _, u := range el.Rows {
		inner = max(inner, runeLen(u.Device))
	}
	if w := a.width(); w > 0 {
		// Leave room for the unit numbers, the borders and some of the driver.
		inner = min(inner, max(8, w-20))
	}
	num := len(strconv.FormatInt(el.Units, 10))
	border := strings.Repeat(" ", num+1) + "+" + strings.Repeat("-", inner+2) + "+"
	a.printf("%s: %dU, %d free\n", a.paint(a.stdout, bold, el.Rack), el.Units, el.Free)
	a.println(border)
	for _, u := range el.Rows {
		name, note := "", ""
		if !u.Free && u.Device != "" {
			name = truncate(u.Device, inner)
			top := u.Base + max(u.Height, 1) - 1
			if u.Unit == top {
				note = u.Driver
				if u.Height > 1 {
					note += " " + client.Relation{Position: &u.Base, Height: &u.Height}.Units()
				}
			}
		}
		cell := name + strings.Repeat(" ", inner-runeLen(name))
		if name != "" && note == "" {
			cell = a.paint(a.stdout, dim, cell)
		}
		line := fmt.Sprintf("%*d | %s |", num, u.Unit, cell)
		if note != "" {
			line += " " + note
		}
		a.println(line)
	}
	a.println(border)
	if len(el.Unplaced) > 0 {
		a.printf("in the rack without a position: %s\n", strings.Join(el.Unplaced, ", "))
	}
}

func (a *app) ipblockCmd() *cobra.Command {
	var limit int
	var after string
	cmd := &cobra.Command{
		Use:   "ipblock BLOCK",
		Short: "Show an address block: size, use and allocations",
		Long: `Show an address block: its network, gateway, parent and children, how many
addresses it has, reserves, has handed out and has free, and its
allocations in address order (--limit and --after page through them).
-o names prints the allocated addresses.`,
		Example: `  clusto ipblock rack101-net
  clusto ipblock sfo1-net -o json | jq .free`,
		Args:              args(1, 1),
		ValidArgsFunction: a.completeEntities(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.cli.IPBlock(a.ctx, args[0], client.BlockPage{After: after, Limit: limit})
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(b)
			case "names":
				for _, x := range b.Allocs {
					a.println(x.Address)
				}
				return nil
			}
			field := func(k, v string) {
				if v != "" {
					a.printf("%-10s %s\n", k+":", v)
				}
			}
			field("Name", b.Name)
			field("Network", b.CIDR)
			field("Gateway", b.Gateway)
			field("Parent", b.Parent)
			field("Children", strings.Join(b.Children, ", "))
			field("Size", b.Size.String())
			field("Reserved", b.Reserved.String())
			field("Allocated", strconv.FormatInt(b.Allocated, 10))
			field("Free", b.Free.String())
			a.section("Allocations:")
			if len(b.Allocs) == 0 {
				a.println("  (none)")
				return nil
			}
			t := newTable("ADDRESS", "ENTITY", "INTERFACE")
			for _, x := range b.Allocs {
				t.add(x.Address, x.Entity, x.Interface)
			}
			a.renderTable(a.stdout, t, a.width(), "  ")
			if n := b.Allocated; n > int64(len(b.Allocs)) {
				fmt.Fprintf(a.stderr, "clusto: showing %d of %d allocations; use --after %s for more\n", len(b.Allocs), n, b.Allocs[len(b.Allocs)-1].Address)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many allocations")
	cmd.Flags().StringVar(&after, "after", "", "allocations after this address")
	return cmd
}
