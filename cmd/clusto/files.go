package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/clusto/clusto/client"
)

// readFile reads a file argument; "-" is standard input.
func (a *app) readFile(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(a.stdin)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// parseOps reads a batch file: {"ops": [...]} or a bare list of ops, in
// JSON or YAML.
func parseOps(raw []byte) ([]client.Op, error) {
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("the batch file is not JSON or YAML: %s", oneLine(err.Error()))
	}
	if m, ok := doc.(map[string]any); ok {
		if len(m) != 1 || m["ops"] == nil {
			return nil, fmt.Errorf(`the batch file must be {"ops": [...]} or a list of ops`)
		}
		doc = m["ops"]
	}
	list, ok := doc.([]any)
	if !ok {
		return nil, fmt.Errorf(`the batch file must be {"ops": [...]} or a list of ops`)
	}
	j, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("the batch file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var ops []client.Op
	if err := dec.Decode(&ops); err != nil {
		return nil, fmt.Errorf("the batch file's ops: %s", oneLine(err.Error()))
	}
	return ops, nil
}

func (a *app) batchCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "batch FILE",
		Short: "Apply a file of ops in one transaction, all or none",
		Long: `Apply the ops of FILE ("-" for standard input) in one transaction: all of
them, or none when one fails (the error names it). FILE is JSON or YAML:
{"ops": [...]} or a list of ops, each as POST /api/v1/batch takes it
(create, delete, rename, attr_add, attr_set, attr_del, insert, remove,
link, unlink, allocate_ip, release_ip, allocate_ru, allocate_name).
--dry-run shows the changes it would make and makes none.`,
		Example: `  clusto batch new-rack.json
  clusto batch new-rack.yaml --dry-run
  echo '[{"op":"create","name":"tmp1","driver":"server"}]' | clusto batch -`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := a.readFile(args[0])
			if err != nil {
				return err
			}
			ops, err := parseOps(raw)
			if err != nil {
				return err
			}
			res, err := a.cli.Batch(a.ctx, ops, dryRun)
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(res)
			case "names":
				for _, r := range res.Results {
					for _, c := range r.Changes {
						a.println(c.Entity)
					}
				}
				return nil
			}
			t := newTable("OP", "CHANGE", "ENTITY", "WHAT").alignRight(0, 1)
			n := 0
			for _, r := range res.Results {
				for _, c := range r.Changes {
					t.add(strconv.Itoa(r.Index), strconv.FormatInt(c.Number, 10), c.Entity, c.Op+" "+summarize(c, ""))
					n++
				}
			}
			a.printTable(t)
			if dryRun {
				fmt.Fprintf(a.stderr, "clusto: dry run: %d ops would make %d changes; nothing was changed\n", len(res.Results), n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes and make none")
	return cmd
}

// inventoryFile reads a plan or apply file argument.
func (a *app) inventoryFile(path string, prune, dryRun bool) (client.File, error) {
	raw, err := a.readFile(path)
	if err != nil {
		return client.File{}, err
	}
	name := path
	if path == "-" {
		name = "stdin"
	}
	// A position in an error is shown under the file's line.
	a.query = string(raw)
	return client.File{Name: name, Content: string(raw), Prune: prune, DryRun: dryRun}, nil
}

func (a *app) printPlan(p *client.Plan) {
	if len(p.Steps) == 0 {
		a.println("nothing to do: the inventory matches the file")
		return
	}
	t := newTable("ACTION", "ENTITY", "WHAT", "SOURCE")
	for _, s := range p.Steps {
		action := s.Action
		switch action {
		case "create":
			action = "+ create"
		case "delete":
			action = "- delete"
		case "change":
			action = "~ change"
		}
		t.add(action, s.Entity, s.Summary, s.Source)
	}
	t.style = func(row, col int) string {
		if col != 0 {
			return ""
		}
		switch p.Steps[row].Action {
		case "create":
			return green
		case "delete":
			return red
		}
		return ""
	}
	a.printTable(t)
	a.printf("%d to create, %d to change, %d to delete\n", p.Create, p.Change, p.Delete)
}

func (a *app) planCmd() *cobra.Command {
	var prune bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what applying an inventory file would change",
		Long: `Show what applying the inventory file FILE (YAML or JSON, "-" for standard
input; docs/inventory-files.md) would change: what it would create, change
and, with --prune, delete (entities the file does not mention). Nothing is
changed. -o names prints the entities the plan touches.`,
		Example: `  clusto plan examples/demo.yaml
  clusto plan site.yaml --prune
  clusto plan site.yaml -o json | jq '.steps[] | select(.action == "delete")'`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := a.inventoryFile(args[0], prune, false)
			if err != nil {
				return err
			}
			p, err := a.cli.Plan(a.ctx, f)
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(p)
			case "names":
				for _, s := range p.Steps {
					a.println(s.Entity)
				}
				return nil
			}
			a.printPlan(p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "also delete entities the file does not mention")
	return cmd
}

func (a *app) applyCmd() *cobra.Command {
	var prune, dryRun bool
	cmd := &cobra.Command{
		Use:   "apply FILE",
		Short: "Make the inventory match an inventory file, in one transaction",
		Long: `Make the inventory match the inventory file FILE (YAML or JSON, "-" for
standard input): the plan 'clusto plan' shows, applied in one transaction.
--prune also deletes entities the file does not mention; --dry-run shows
the plan and changes nothing.`,
		Example: `  clusto apply examples/demo.yaml
  clusto apply site.yaml --prune --dry-run`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := a.inventoryFile(args[0], prune, dryRun)
			if err != nil {
				return err
			}
			res, err := a.cli.Apply(a.ctx, f)
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printJSON(res)
			case "names":
				for _, s := range res.Plan.Steps {
					a.println(s.Entity)
				}
				return nil
			}
			a.printPlan(&res.Plan)
			var first, last int64
			n := 0
			for _, r := range res.Results {
				for _, c := range r.Changes {
					if first == 0 {
						first = c.Number
					}
					last = c.Number
					n++
				}
			}
			switch {
			case dryRun || res.DryRun:
				fmt.Fprintln(a.stderr, "clusto: dry run: nothing was changed")
			case n > 0:
				a.printf("applied: %d changes (%d-%d)\n", n, first, last)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "also delete entities the file does not mention")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the plan and change nothing")
	return cmd
}

func (a *app) exportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export [EXPR]",
		Short: "Write the inventory, or what a query matches, as an inventory file",
		Long: `Write the entities matching the query EXPR (every entity without one) as an
inventory file (YAML) that 'clusto apply' takes back.`,
		Example: `  clusto export > inventory.yaml
  clusto export 'name:rack101 or driver:server in name:rack101' > rack101.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.query = joinArgs(args)
			ex, err := a.cli.Export(a.ctx, a.query)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(ex)
			}
			fmt.Fprint(a.stdout, ex.Content)
			return nil
		},
	}
}

func joinArgs(args []string) string {
	var b bytes.Buffer
	for i, s := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}
