package main

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clusto/clusto/client"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the client's and the server's versions",
		Long: `Show this client's version and the server's: its address, its version (when
it tells it) and its newest change number. An unreachable server is exit 5,
after the client's version.`,
		Example: `  clusto version
  clusto version -o json`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, herr := a.cli.Health(a.ctx)
			if a.output == "json" {
				out := map[string]any{"client": map[string]string{"version": version, "go": runtime.Version()}}
				srv := map[string]any{"url": a.server}
				if herr == nil {
					srv["status"], srv["change"] = h.Status, h.Change
					if h.Version != "" {
						srv["version"] = h.Version
					}
				}
				out["server"] = srv
				if err := a.printJSON(out); err != nil {
					return err
				}
				return herr
			}
			a.printf("client: clusto %s (%s)\n", version, runtime.Version())
			if herr != nil {
				return herr
			}
			if h.Version != "" {
				a.printf("server: clustod %s at %s: status %s, change %d\n", h.Version, a.server, h.Status, h.Change)
			} else {
				a.printf("server: clustod at %s: status %s, change %d (it does not report its version)\n", a.server, h.Status, h.Change)
			}
			return nil
		},
	}
}

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "whoami",
		Short:   "Show the token's name and role",
		Example: `  clusto whoami`,
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := a.cli.Whoami(a.ctx)
			if err != nil {
				return err
			}
			return a.done(w.Name, w, "%s (%s) at %s", w.Name, w.Role, a.server)
		},
	}
}

func (a *app) driversCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "drivers [NAME]",
		Short: "List the types of things the server knows, or show one with its ports",
		Example: `  clusto drivers
  clusto drivers switch`,
		Args:              args(0, 1),
		ValidArgsFunction: a.completeDrivers(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				d, err := a.cli.Driver(a.ctx, args[0])
				if err != nil {
					return err
				}
				switch a.output {
				case "json":
					return a.printJSON(d)
				case "names":
					a.println(d.Name)
					return nil
				}
				a.printDriver(d)
				return nil
			}
			ds, err := a.cli.Drivers(a.ctx)
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(map[string]any{"drivers": ds})
			case "names":
				for _, d := range ds {
					a.println(d.Name)
				}
				return nil
			}
			t := newTable("NAME", "KIND", "MAY BE IN", "HEIGHT", "DESCRIPTION")
			for _, d := range ds {
				h := ""
				if d.Height > 0 {
					h = strconv.Itoa(d.Height)
				}
				t.add(d.Name, string(d.Kind), strings.Join(d.Parents, ","), h, d.Description)
			}
			a.printTable(t)
			return nil
		},
	}
}

func (a *app) printDriver(d *client.Driver) {
	a.printf("%-12s %s\n", "Name:", d.Name)
	a.printf("%-12s %s\n", "Kind:", d.Kind)
	if d.Description != "" {
		a.printf("%-12s %s\n", "Description:", d.Description)
	}
	if len(d.Parents) > 0 {
		a.printf("%-12s %s\n", "May be in:", strings.Join(d.Parents, ", "))
	}
	if d.Height > 0 {
		a.printf("%-12s %d\n", "Height:", d.Height)
	}
	a.section("Ports:")
	if len(d.PortList) == 0 {
		a.println("  (none)")
	} else {
		byType := map[string][]string{}
		var order []string
		for _, p := range d.PortList {
			if _, ok := byType[p.Type]; !ok {
				order = append(order, p.Type)
			}
			byType[p.Type] = append(byType[p.Type], p.Name)
		}
		t := newTable("TYPE", "PORTS")
		for _, typ := range order {
			t.add(typ, compactPorts(byType[typ]))
		}
		a.renderTable(a.stdout, t, a.width(), "  ")
	}
	a.section("Attributes:")
	if len(d.Attrs) == 0 {
		a.println("  (none)")
		return
	}
	keys := make([]string, 0, len(d.Attrs))
	for k := range d.Attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t := newTable("KEY", "TYPE", "DESCRIPTION")
	for _, k := range keys {
		s := d.Attrs[k]
		t.add(k, s.Type, s.Description)
	}
	a.renderTable(a.stdout, t, a.width(), "  ")
}

var numbered = regexp.MustCompile(`^(.*?)(\d{1,6})$`)

// compactPorts shortens runs of numbered ports: 1-48, ge-0/0/0-23.
func compactPorts(names []string) string {
	var out []string
	for i := 0; i < len(names); {
		j := i
		for j+1 < len(names) && nextPort(names[j], names[j+1]) {
			j++
		}
		if j-i >= 2 {
			m := numbered.FindStringSubmatch(names[j])
			out = append(out, names[i]+"-"+m[2])
		} else {
			out = append(out, names[i:j+1]...)
		}
		i = j + 1
	}
	return strings.Join(out, " ")
}

func nextPort(a, b string) bool {
	ma, mb := numbered.FindStringSubmatch(a), numbered.FindStringSubmatch(b)
	if ma == nil || mb == nil || ma[1] != mb[1] {
		return false
	}
	na, _ := strconv.Atoi(ma[2])
	nb, _ := strconv.Atoi(mb[2])
	return nb == na+1
}

func (a *app) completionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh",
		Short: "Print the shell completion script (commands, flags and entity names)",
		Long: `Print a completion script for bash or zsh. It completes commands and flags,
and entity and driver names by asking the server (with the same --server,
--token and config file as any command).`,
		Example: `  source <(clusto completion bash)              # this shell
  clusto completion bash > /etc/bash_completion.d/clusto
  clusto completion zsh > "${fpath[1]}/_clusto"   # zsh, with compinit`,
		ValidArgs: []string{"bash", "zsh"},
		Args:      args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "bash":
				return cmd.Root().GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return cmd.Root().GenZshCompletion(a.stdout)
			}
			return &usageError{msg: fmt.Sprintf("no completion for %q; use bash or zsh", args[0]), cmd: cmd.CommandPath()}
		},
	}
}

func fixedCompletion(words ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return words, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionLimit bounds the names offered at once.
const completionLimit = 200

// plainName is a name prefix that can go in a query glob as a bare word.
var plainName = regexp.MustCompile(`^[A-Za-z0-9._/@:-]*$`)

// completeEntities completes the first n positional arguments (all when n
// is -1) with entity names from the server.
func (a *app) completeEntities(n int) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if !plainName.MatchString(prefix) || a.setup(cmd) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
		defer cancel()
		q := "*"
		if prefix != "" {
			q = "name:" + prefix + "*"
		}
		res, err := a.cli.Query(ctx, client.Query{Q: q, Limit: completionLimit})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
		}
		names := make([]string, 0, len(res.Results))
		for _, e := range res.Results {
			names = append(names, e.Name+"\t"+e.Driver)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeDrivers completes the first n positional arguments (all when n is
// -1) with driver names.
func (a *app) completeDrivers(n int) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if a.setup(cmd) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
		defer cancel()
		ds, err := a.cli.Drivers(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
		}
		var out []string
		for _, d := range ds {
			if strings.HasPrefix(d.Name, prefix) {
				out = append(out, d.Name+"\t"+string(d.Kind))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
