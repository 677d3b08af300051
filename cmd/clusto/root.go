package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

const rootLong = `clusto - the command line for the clusto inventory

Every command talks to clustod's JSON API; clusto never opens the database.

Server and token, first found wins:
  --server URL / --token TOKEN
  CLUSTO_URL / CLUSTO_TOKEN
  ~/.config/clusto/config (YAML: "server: URL" and "token: TOKEN")
  http://127.0.0.1:8642, no token

Output (-o): table (the default; fits the terminal), json (the API's JSON,
for jq) or names (one name a line, for xargs). Colour only on a terminal,
never with NO_COLOR.

Exit codes: 0 success, 1 error, 2 usage (also a query that does not parse),
3 not found, 4 conflict (taken, exhausted, insufficient, changed since read),
5 cannot reach the server.`

const rootExample = `  clusto query 'driver:server and attr:status,unallocated' -o names
  clusto info s0001
  clusto locate s0001
  clusto allocate ip rack101-net s0001 --interface eth0
  clusto elevation rack101
  source <(clusto completion bash)`

// rootCommand builds the command tree.
func (a *app) rootCommand() *cobra.Command {
	// Help lists commands in the order they are added: the common first.
	cobra.EnableCommandSorting = false
	root := &cobra.Command{
		Use:           "clusto",
		Short:         "The command line for the clusto inventory",
		Long:          rootLong,
		Example:       rootExample,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return &usageError{msg: msg, cmd: "clusto"}
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(a.stderr)
			cmd.Help()
			return &usageError{msg: "no command given", cmd: "clusto"}
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.cmdPath = cmd.CommandPath()
			return a.setup(cmd)
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{msg: err.Error(), cmd: c.CommandPath()}
	})
	a.globalFlags(root.PersistentFlags())
	root.RegisterFlagCompletionFunc("output", fixedCompletion("table", "json", "names"))
	root.RegisterFlagCompletionFunc("color", fixedCompletion("auto", "always", "never"))

	root.AddGroup(
		&cobra.Group{ID: "find", Title: "Finding things:"},
		&cobra.Group{ID: "edit", Title: "Changing things:"},
		&cobra.Group{ID: "alloc", Title: "Allocating:"},
		&cobra.Group{ID: "files", Title: "Inventory files:"},
		&cobra.Group{ID: "other", Title: "Other commands:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("find", a.queryCmd(), a.getCmd(), a.infoCmd(), a.locateCmd(), a.consoleCmd(), a.powerCmd(),
		a.historyCmd(), a.changesCmd(), a.elevationCmd(), a.ipblockCmd())
	add("edit", a.createCmd(), a.deleteCmd(), a.renameCmd(), a.attrCmd(), a.insertCmd(), a.removeCmd(),
		a.connectCmd(), a.disconnectCmd())
	add("alloc", a.allocateCmd(), a.releaseCmd())
	add("files", a.batchCmd(), a.planCmd(), a.applyCmd(), a.exportCmd())
	add("other", a.versionCmd(), a.whoamiCmd(), a.driversCmd(), a.backupCmd(), a.tokenCmd(), a.completionCmd())
	root.SetHelpCommandGroupID("other")
	return root
}

// args checks the number of positional arguments, as a usage error.
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return &usageError{msg: "missing arguments; usage: " + cmd.UseLine(), cmd: cmd.CommandPath()}
		case max >= 0 && len(args) > max:
			return &usageError{msg: fmt.Sprintf("too many arguments (%q is extra); usage: %s", args[max], cmd.UseLine()), cmd: cmd.CommandPath()}
		}
		return nil
	}
}
