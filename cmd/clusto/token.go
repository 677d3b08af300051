package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/clusto/clusto/client"
)

// tokenCmd groups what the command line does with API tokens. Tokens are
// made and revoked on the server's host (clustod token) or over the API;
// the command line reads who did so.
func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "API tokens: who created and revoked which (audit)",
		Long: `API tokens are made and revoked with clustod token on the server's host, or
over the API by an admin (docs/api.md). clusto token audit shows who did
so, and when.`,
		Example: `  clusto token audit`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{msg: fmt.Sprintf("unknown token subcommand %q; use audit", args[0]), cmd: cmd.CommandPath()}
			}
			return &usageError{msg: "token needs a subcommand: audit", cmd: cmd.CommandPath()}
		},
	}
	cmd.AddCommand(a.tokenAuditCmd())
	return cmd
}

func (a *app) tokenAuditCmd() *cobra.Command {
	var since int64
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Who created and revoked which API tokens, and when (admin)",
		Long: `The token audit list, oldest first (GET /api/v1/tokens/audit; an admin
token): every token created or revoked, over the API or with clustod token
on the server's host, with its time, who did it (the token the request
was made with, anonymous without one, or clustod/USER for the command line
run by USER) and the token's name and role. A token's secret is never in
it.

Every event after --since N (0: from the first) is shown, or at most
--limit of them. -o names prints the event numbers, -o json the API's
answer (with each event's request_id, under which the server's log has
the request).`,
		Example: `  clusto token audit
  clusto token audit --since 40 --limit 10
  clusto token audit -o json | jq -r '.events[] | select(.action == "revoke") | .token'`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("limit") && (limit < 1 || limit > 1000) {
				return usagef("--limit %d must be from 1 to 1000", limit)
			}
			if since < 0 {
				return usagef("--since %d must be an event number (0 or more)", since)
			}
			all, err := a.tokenAudit(since, limit)
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(all)
			case "names":
				for _, ev := range all.Events {
					a.println(ev.ID)
				}
				return nil
			}
			if len(all.Events) == 0 {
				fmt.Fprintf(a.stderr, "clusto: no token was created or revoked after event %d\n", since)
				return nil
			}
			t := newTable("EVENT", "TIME", "ACTOR", "ACTION", "TOKEN", "ROLE").alignRight(0)
			for _, ev := range all.Events {
				t.add(strconv.FormatInt(ev.ID, 10), timeText(ev.Time), ev.Actor, ev.Action, ev.Token, string(ev.Role))
			}
			a.printTable(t)
			return nil
		},
	}
	cmd.Flags().Int64Var(&since, "since", 0, "events after this event number")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many events (1-1000; default: all)")
	return cmd
}

// tokenAudit reads the events after since: at most limit of them, or all
// (page by page) when limit is 0. Next is that of the last page read.
func (a *app) tokenAudit(since int64, limit int) (*client.TokenAudit, error) {
	all := &client.TokenAudit{Events: []client.TokenEvent{}, Next: since}
	for {
		want := 1000
		if limit > 0 {
			want = min(want, limit-len(all.Events))
		}
		page, err := a.cli.TokenAudit(a.ctx, client.Page{Since: all.Next, Limit: want})
		if err != nil {
			return nil, err
		}
		all.Events = append(all.Events, page.Events...)
		all.Next = page.Next
		if len(page.Events) < want || (limit > 0 && len(all.Events) >= limit) {
			return all, nil
		}
	}
}
