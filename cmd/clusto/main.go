// Command clusto is the command line for the clusto inventory. Every
// command is one or a few calls to clustod's JSON API through the client
// package; it never opens the database.
//
//	clusto query 'driver:server and attr:status,unallocated'
//	clusto locate s0012
//	clusto allocate ip rack101-net s0001 --interface eth0
//
// Run 'clusto --help' for every command, and docs/cli.md for examples.
//
// Exit codes: 0 success, 1 error, 2 usage (including a query that does not
// parse), 3 not found, 4 conflict (taken, exhausted, insufficient, changed
// since read), 5 cannot reach the server.
package main

import (
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run is the whole command: it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := newApp(stdin, stdout, stderr, getenv)
	return a.execute(args)
}
