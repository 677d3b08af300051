package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/clusto/clusto/client"
	"github.com/clusto/clusto/entity"
)

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitConflict    = 4
	exitUnreachable = 5
	// exitInterrupted is the shell's code for a command ended by SIGINT.
	exitInterrupted = 130
)

// app is one run of the command: its streams, its global flags and the
// client built from them.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// Global flags.
	server, token, output, color, configPath string
	timeout                                  time.Duration

	ctx context.Context
	cli *client.Client
	// cmdPath is the running command ("clusto attr add"), for usage hints.
	cmdPath string
	// query is the query text of the running command, for showing a
	// syntax error's position under it.
	query string
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
}

// usageError is a command line that is wrong: exit code 2.
type usageError struct {
	msg string
	// cmd is the command's path, for the hint to its help.
	cmd string
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// execute runs the command line and returns the exit code.
func (a *app) execute(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a.ctx = ctx
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return a.fail(err)
}

// fail prints err on stderr, in one line (plus the query and a caret for a
// query syntax error), and returns its exit code.
func (a *app) fail(err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(a.stderr, "clusto: interrupted")
		return exitInterrupted
	}
	code := exitCode(err)
	msg := oneLine(err.Error())
	var ce *client.Error
	if errors.As(err, &ce) {
		switch {
		case ce.Code == client.CodeQuerySyntax:
			if strings.HasPrefix(msg, "column ") || strings.HasPrefix(msg, "line ") {
				msg = "query syntax error at " + msg
			} else {
				msg = "query syntax error: " + msg
			}
		case ce.Code == client.CodeUnauthorized && a.token == "":
			msg += " (give a token with --token, CLUSTO_TOKEN or the config file)"
		case ce.Code == client.CodeInternal && ce.RequestID != "" && !strings.Contains(msg, ce.RequestID):
			msg += " (request id " + ce.RequestID + ")"
		}
	}
	var ue *usageError
	if errors.As(err, &ue) {
		path := first(ue.cmd, a.cmdPath, "clusto")
		msg += " (see '" + path + " --help')"
	}
	fmt.Fprintf(a.stderr, "%s %s\n", a.paint(a.stderr, red, "clusto:"), msg)
	if ce != nil && ce.Position != nil && a.query != "" {
		if c := entity.Caret(a.query, ce.Position.Line, ce.Position.Column); c != "" {
			fmt.Fprint(a.stderr, indent(c, "  "))
		}
	}
	return code
}

// exitCode maps an error to the command's exit code.
func exitCode(err error) int {
	var ue *usageError
	var ce *client.Error
	var ne *client.UnreachableError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ne):
		return exitUnreachable
	case errors.As(err, &ce):
		switch ce.Code {
		case client.CodeNotFound:
			return exitNotFound
		case client.CodeConflict, client.CodePrecondition,
			// Servers before the reasons moved out of the code sent these.
			"exhausted", "insufficient":
			return exitConflict
		case client.CodeQuerySyntax:
			return exitUsage
		}
	}
	return exitError
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	if !strings.HasSuffix(s, "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

// config is ~/.config/clusto/config.
type config struct {
	Server string `yaml:"server"`
	Token  string `yaml:"token"`
}

// configFile is the config file's path: --config, CLUSTO_CONFIG, then
// $XDG_CONFIG_HOME/clusto/config or ~/.config/clusto/config.
func (a *app) configFile() string {
	if a.configPath != "" {
		return a.configPath
	}
	if p := a.getenv("CLUSTO_CONFIG"); p != "" {
		return p
	}
	if d := a.getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "clusto", "config")
	}
	if h := a.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "clusto", "config")
	}
	return ""
}

// loadConfig reads the config file; a missing file is no error unless it
// was named explicitly.
func (a *app) loadConfig() (config, error) {
	var c config
	path := a.configFile()
	if path == "" {
		return c, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && a.configPath == "" && a.getenv("CLUSTO_CONFIG") == "" {
			return c, nil
		}
		return c, fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.ReplaceAll(oneLine(err.Error()), " in type main.config", "")
		return c, fmt.Errorf("config file %s: %s (it holds 'server: URL' and 'token: TOKEN')", path, msg)
	}
	if c.Token != "" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(a.stderr, "clusto: warning: %s holds a token and others may read it; chmod 600 it\n", path)
		}
	}
	return c, nil
}

// defaultTimeoutAnnotation, on a command, replaces the default of
// --timeout for it: a time.Duration for commands whose requests take longer
// than most.
const defaultTimeoutAnnotation = "clusto-default-timeout"

// setup resolves the server and token (flag, environment, config file,
// default) and builds the client. It runs before every command.
func (a *app) setup(cmd *cobra.Command) error {
	switch a.output {
	case "table", "json", "names":
	default:
		return usagef("-o %q: the output formats are table, json and names", a.output)
	}
	switch a.color {
	case "auto", "always", "never":
	default:
		return usagef("--color %q: use auto, always or never", a.color)
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	server := first(a.flagValue(cmd, "server"), a.getenv("CLUSTO_URL"), cfg.Server, client.DefaultServer)
	a.token = first(a.flagValue(cmd, "token"), a.getenv("CLUSTO_TOKEN"), cfg.Token)
	timeout := a.timeout
	if d, ok := cmd.Annotations[defaultTimeoutAnnotation]; ok && !cmd.Flags().Changed("timeout") {
		if timeout, err = time.ParseDuration(d); err != nil {
			return fmt.Errorf("command %s: default timeout %q: %w", cmd.CommandPath(), d, err)
		}
	}
	opts := []client.Option{client.WithTimeout(timeout), client.WithUserAgent("clusto/" + version)}
	if a.token != "" {
		opts = append(opts, client.WithToken(a.token))
	}
	a.cli, err = client.New(server, opts...)
	if err != nil {
		return usagef("%s", err.Error())
	}
	a.server = a.cli.Server()
	return nil
}

// flagValue is a global flag's value when it was given on the command line.
func (a *app) flagValue(cmd *cobra.Command, name string) string {
	f := cmd.Flags().Lookup(name)
	if f == nil || !f.Changed {
		return ""
	}
	return f.Value.String()
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// globalFlags declares the flags every command takes.
func (a *app) globalFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.server, "server", "", "clustod's address (env CLUSTO_URL; default "+client.DefaultServer+")")
	fs.StringVar(&a.token, "token", "", "API token (env CLUSTO_TOKEN)")
	fs.StringVarP(&a.output, "output", "o", "table", "output format: table, json or names")
	fs.StringVar(&a.color, "color", "auto", "colour: auto (on a terminal, unless NO_COLOR is set), always or never")
	fs.DurationVar(&a.timeout, "timeout", 30*time.Second, "give up on a request after this long")
	fs.StringVar(&a.configPath, "config", "", "config file (env CLUSTO_CONFIG; default ~/.config/clusto/config)")
}
