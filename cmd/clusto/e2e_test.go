package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/clusto/clusto/client"
)

// TestReadCommands runs every read command on the demo inventory and
// compares each table with its golden file.
func TestReadCommands(t *testing.T) {
	srv, _ := startServer(t, true)
	r := newRunner(t, srv)
	cases := []struct {
		name string
		code int
		args []string
	}{
		{"query", 0, []string{"query", "driver:server", "in", "name:rack101", "-a", "status", "-a", "memory_gb"}},
		{"query-names", 0, []string{"-o", "names", "q", "pool:production and attr:memory_gb>=128"}},
		{"query-limit", 0, []string{"query", "driver:server", "--limit", "3"}},
		{"query-syntax-error", 2, []string{"query", "driver:server and (pool:web or"}},
		{"query-at", 0, []string{"query", "driver:server in name:rack101", "--at", "75"}},
		{"query-none", 0, []string{"query", "driver:server and attr:memory_gb>1024"}},
		{"get-ip", 0, []string{"get", "10.1.1.12"}},
		{"get-mac", 0, []string{"get", "52-54-00-01-01-00"}},
		{"get-serial", 0, []string{"get", "sn339563"}},
		{"get-not-found", 3, []string{"get", "10.9.9.9"}},
		{"info", 0, []string{"info", "s0003"}},
		{"info-merged", 0, []string{"info", "rack101", "--merged"}},
		{"info-not-found", 3, []string{"info", "s9999"}},
		{"attr-get", 0, []string{"attr", "get", "s0003"}},
		{"attr-get-values", 0, []string{"attr", "get", "s0003", "memory_gb", "-o", "names"}},
		{"attr-get-merged", 0, []string{"attr", "get", "s0003", "region", "--merged"}},
		{"attr-get-missing", 3, []string{"attr", "get", "s0003", "nothing"}},
		{"locate", 0, []string{"locate", "s0001"}},
		{"locate-names", 0, []string{"locate", "s0001", "-o", "names"}},
		{"locate-not-found", 3, []string{"locate", "server1"}},
		{"console", 0, []string{"console", "s0001"}},
		{"power", 0, []string{"power", "s0001"}},
		{"power-none", 0, []string{"power", "rack101"}},
		{"console-names", 0, []string{"console", "s0001", "-o", "names"}},
		{"power-json", 0, []string{"power", "s0001", "-o", "json"}},
		{"history", 0, []string{"history", "s0001"}},
		{"changes", 0, []string{"changes", "--since", "40", "--limit", "6"}},
		{"elevation", 0, []string{"elevation", "rack101"}},
		{"elevation-names", 0, []string{"elevation", "rack101", "-o", "names"}},
		{"ipblock", 0, []string{"ipblock", "rack101-net"}},
		{"drivers", 0, []string{"drivers"}},
		{"drivers-switch", 0, []string{"drivers", "switch"}},
		{"whoami", 0, []string{"whoami"}},
		{"export", 0, []string{"export", "name:rack101-net"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := r.run(c.args...)
			if res.code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", res.code, c.code, res.stderr)
			}
			if c.code != 0 && (res.stdout != "" || strings.Count(res.stderr, "\n") > 3) {
				t.Errorf("an error printed stdout %q or a long stderr %q", res.stdout, res.stderr)
			}
			golden(t, c.name, res.transcript())
		})
	}
}

// TestJSONOutput checks that -o json prints the API's JSON.
func TestJSONOutput(t *testing.T) {
	srv, _ := startServer(t, true)
	r := newRunner(t, srv)
	decode := func(res result, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
			t.Fatalf("clusto %s -o json: %v\n%s", strings.Join(res.args, " "), err, res.stdout)
		}
	}
	var page struct {
		Results []struct {
			Name  string `json:"name"`
			Attrs []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"attrs"`
		} `json:"results"`
		Total      int    `json:"total"`
		NextCursor string `json:"next_cursor"`
	}
	decode(r.ok("query", "driver:server", "-o", "json", "--limit", "5"), &page)
	if len(page.Results) != 5 || page.Total != 32 || page.NextCursor == "" {
		t.Errorf("query page: %d results, total %d, cursor %q", len(page.Results), page.Total, page.NextCursor)
	}
	page.Results, page.NextCursor = nil, ""
	decode(r.ok("query", "driver:server", "--all", "--limit", "5", "-o", "json"), &page)
	if len(page.Results) != 32 || page.NextCursor != "" {
		t.Errorf("query --all: %d results, cursor %q", len(page.Results), page.NextCursor)
	}
	for _, a := range page.Results[0].Attrs {
		if a.Key == "memory_gb" {
			if _, ok := a.Value.(float64); !ok {
				t.Errorf("memory_gb is %T in JSON, want a number", a.Value)
			}
		}
	}

	var e struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
		Parents []struct {
			Name     string `json:"name"`
			Position *int   `json:"position"`
		} `json:"parents"`
	}
	decode(r.ok("info", "s0001", "-o", "json"), &e)
	if e.Name != "s0001" || e.Version < 1 || len(e.Parents) == 0 || e.Parents[0].Position == nil || *e.Parents[0].Position != 10 {
		t.Errorf("info -o json: %+v", e)
	}
	var loc struct {
		Path  []string `json:"path"`
		Lines []struct {
			Text string `json:"text"`
		} `json:"lines"`
	}
	res := r.ok("locate", "s0001", "-o", "json")
	decode(res, &loc)
	if len(loc.Path) != 5 || loc.Lines[0].Text != "s0001 -> connected to port 1 on switch101" || strings.Contains(res.stdout, `\u003e`) {
		t.Errorf("locate -o json: %s", res.stdout)
	}
	var el struct {
		Rows []struct {
			Unit int  `json:"unit"`
			Free bool `json:"free"`
		} `json:"rows"`
		Free int `json:"free"`
	}
	decode(r.ok("elevation", "rack102", "-o", "json"), &el)
	if len(el.Rows) != 42 || el.Rows[0].Unit != 42 || el.Free != 30 {
		t.Errorf("elevation -o json: %d rows, free %d", len(el.Rows), el.Free)
	}
	var ex struct {
		SQL  string `json:"sql"`
		Args []any  `json:"args"`
	}
	decode(r.ok("query", "driver:server in name:rack101", "--explain", "-o", "json"), &ex)
	if !strings.Contains(ex.SQL, "SELECT") || len(ex.Args) == 0 {
		t.Errorf("explain: %+v", ex)
	}
	if res := r.ok("query", "driver:server in name:rack101", "--explain"); !strings.Contains(res.stdout, "SELECT") || !strings.Contains(res.stdout, `-- ?`) {
		t.Errorf("explain as text:\n%s", res.stdout)
	}
	var ch struct {
		Changes []struct {
			Change int    `json:"change"`
			Op     string `json:"op"`
		} `json:"changes"`
		Next int `json:"next"`
	}
	decode(r.ok("history", "s0001", "-o", "json"), &ch)
	if len(ch.Changes) == 0 || ch.Changes[0].Op != "create" || ch.Next != ch.Changes[len(ch.Changes)-1].Change {
		t.Errorf("history -o json: %+v", ch)
	}
	var v struct {
		Client struct{ Version string } `json:"client"`
		Server struct {
			URL    string `json:"url"`
			Status string `json:"status"`
			Change int    `json:"change"`
		} `json:"server"`
	}
	decode(r.ok("version", "-o", "json"), &v)
	if v.Client.Version == "" || v.Server.URL != srv.url || v.Server.Status != "ok" || v.Server.Change == 0 {
		t.Errorf("version -o json: %+v", v)
	}
}

// TestConventions covers flags, output formats, widths, colour, config and
// the exit codes that are not about one command.
func TestConventions(t *testing.T) {
	srv, _ := startServer(t, true)
	r := newRunner(t, srv)

	t.Run("flags before and after arguments", func(t *testing.T) {
		r := r.on(t)
		a := r.ok("query", "driver:pdu in name:sfo1", "-o", "names", "--at", "300")
		b := r.ok("-o", "names", "query", "--at=300", "driver:pdu in name:sfo1")
		c := r.ok("query", "--output", "names", "driver:pdu", "in", "--at", "300", "name:sfo1")
		if a.stdout != "pdu101\npdu102\n" || b.stdout != a.stdout || c.stdout != a.stdout {
			t.Errorf("outputs differ:\n%s\n%s\n%s", a.stdout, b.stdout, c.stdout)
		}
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		r := r.on(t)
		r.run().expect(t, 2, "no command given")
		r.run("lcoate", "s0001").expect(t, 2, `unknown command "lcoate"`, "did you mean locate?")
		r.run("locate").expect(t, 2, "missing arguments; usage: clusto locate NAME", "see 'clusto locate --help'")
		r.run("locate", "a", "b").expect(t, 2, `too many arguments ("b" is extra)`)
		r.run("locate", "s0001", "--bogus").expect(t, 2, "unknown flag: --bogus")
		r.run("info", "s0001", "-o", "yaml").expect(t, 2, `-o "yaml": the output formats are table, json and names`)
		r.run("attr", "frob", "s0001").expect(t, 2, `unknown attr subcommand "frob"`)
		r.run("create", "server", "x1", "novalue").expect(t, 2, `"novalue" is not KEY=VALUE`)
		r.run("allocate", "name", "servers").expect(t, 2, "--driver is required")
		r.run("attr", "del", "s0001", "disk", "--number", "next").expect(t, 2, "--number next only applies to attr add")
		r.run("--server", "ftp://x", "info", "s0001").expect(t, 2, "the scheme must be http or https")
	})

	t.Run("help", func(t *testing.T) {
		r := r.on(t)
		res := r.ok("--help")
		for _, want := range []string{"Finding things:", "Changing things:", "Allocating:", "Examples:", "Exit codes: 0 success"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("clusto --help lacks %q", want)
			}
		}
		for _, cmd := range [][]string{{"locate"}, {"attr", "add"}, {"allocate", "ip"}, {"query"}, {"connect"}, {"elevation"}} {
			res := r.ok(append(cmd, "--help")...)
			if !strings.Contains(res.stdout, "Examples:") || !strings.Contains(res.stdout, "clusto "+strings.Join(cmd, " ")) {
				t.Errorf("clusto %s --help:\n%s", strings.Join(cmd, " "), res.stdout)
			}
		}
	})

	t.Run("server down exits 5 with the address", func(t *testing.T) {
		addr := downAddr(t)
		res := newRunner(t, nil, "CLUSTO_URL=http://"+addr).run("locate", "s0001")
		res.expect(t, 5, "cannot reach clustod at http://"+addr+": connection refused")
		if strings.Count(res.stderr, "\n") != 1 {
			t.Errorf("not one line: %q", res.stderr)
		}
		golden(t, "server-down", res.transcript())
		res = newRunner(t, nil).run("--server", addr, "version")
		res.expect(t, 5, "http://"+addr)
		if !strings.HasPrefix(res.stdout, "client: clusto ") {
			t.Errorf("version shows the client's before failing: %q", res.stdout)
		}
	})

	t.Run("tables fit the width", func(t *testing.T) {
		r := r.on(t)
		res := r.with("COLUMNS=50").ok("query", "driver:server in name:rack101", "-a", "status", "-a", "memory_gb")
		for _, l := range strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n") {
			if n := utf8.RuneCountInString(l); n > 50 {
				t.Errorf("line of %d characters: %q", n, l)
			}
		}
		if !strings.Contains(res.stdout, "…") {
			t.Errorf("nothing was shortened:\n%s", res.stdout)
		}
		golden(t, "query-narrow", res.transcript())
		wide := r.ok("query", "driver:server in name:rack101", "-a", "status", "-a", "memory_gb")
		if strings.Contains(wide.stdout, "…") {
			t.Errorf("a pipe without COLUMNS got shortened lines:\n%s", wide.stdout)
		}
	})

	t.Run("colour", func(t *testing.T) {
		r := r.on(t)
		if res := r.ok("locate", "s0001"); strings.Contains(res.stdout, "\x1b[") {
			t.Errorf("colour on a pipe: %q", res.stdout)
		}
		if res := r.ok("query", "name:s0001", "--color", "always"); !strings.Contains(res.stdout, "\x1b[1mNAME") {
			t.Errorf("--color always: %q", res.stdout)
		}
		if res := r.with("NO_COLOR=1").ok("query", "name:s0001", "--color", "always"); strings.Contains(res.stdout, "\x1b[") {
			t.Errorf("colour with NO_COLOR: %q", res.stdout)
		}
		res := r.run("info", "nothing", "--color", "always")
		res.expect(t, 3, "\x1b[31mclusto:\x1b[0m")
	})

	t.Run("config file", func(t *testing.T) {
		home := t.TempDir()
		cfg := filepath.Join(home, ".config", "clusto", "config")
		os.MkdirAll(filepath.Dir(cfg), 0o700)
		os.WriteFile(cfg, []byte("# clusto\nserver: "+srv.url+"\n"), 0o600)
		base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
		cr := &runner{t: t, env: base}
		if res := cr.ok("get", "s0001", "-o", "names"); res.stdout != "s0001\n" {
			t.Errorf("server from the config file: %q", res.stdout)
		}
		// The environment wins over the file, the flag over both.
		down := "http://" + downAddr(t)
		cr.with("CLUSTO_URL="+down).run("get", "s0001").expect(t, 5, down)
		cr.with("CLUSTO_URL="+down).ok("--server", srv.url, "get", "s0001")
		other := filepath.Join(home, "other")
		os.WriteFile(other, []byte("servr: x\n"), 0o600)
		cr.run("--config", other, "get", "s0001").expect(t, 1, "config file "+other, "field servr not found")
		cr.with("CLUSTO_CONFIG="+filepath.Join(home, "missing")).run("get", "s0001").expect(t, 1, "no such file")
	})

	t.Run("completion", func(t *testing.T) {
		r := r.on(t)
		if res := r.ok("completion", "bash"); !strings.Contains(res.stdout, "__start_clusto") {
			t.Errorf("bash completion script:\n%.300s", res.stdout)
		}
		if res := r.ok("completion", "zsh"); !strings.HasPrefix(res.stdout, "#compdef clusto") {
			t.Errorf("zsh completion script:\n%.300s", res.stdout)
		}
		r.run("completion", "tcsh").expect(t, 2, `no completion for "tcsh"`)
		// __complete is what the scripts call; it reports its directive on stderr.
		complete := func(args ...string) result {
			t.Helper()
			res := r.run(append([]string{"__complete"}, args...)...)
			if res.code != 0 {
				t.Errorf("clusto __complete %s: exit %d: %s", strings.Join(args, " "), res.code, res.stderr)
			}
			return res
		}
		res := complete("locate", "s000")
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if len(lines) != 10 || lines[0] != "s0001\tserver" || lines[9] != ":4" {
			t.Errorf("entity names for 'locate s000':\n%s", res.stdout)
		}
		res = complete("insert", "rack101", "s003")
		if !strings.Contains(res.stdout, "s0030\tserver") {
			t.Errorf("second argument of insert:\n%s", res.stdout)
		}
		res = complete("create", "sw")
		if !strings.HasPrefix(res.stdout, "switch\tequipment\n") {
			t.Errorf("driver names for 'create sw':\n%s", res.stdout)
		}
		// The bash script, driven as bash drives it (with a stand-in for
		// the bash-completion package's _get_comp_words_by_ref), runs
		// clusto from PATH and offers the server's names.
		if bash, err := exec.LookPath("bash"); err == nil {
			script := `_get_comp_words_by_ref() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
source <(clusto completion bash)
COMP_WORDS=(clusto info s001); COMP_CWORD=2; COMP_LINE="clusto info s001"; COMP_POINT=${#COMP_LINE}
__start_clusto clusto s001 info 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command(bash, "--norc", "-c", script)
			cmd.Env = append(r.env, "PATH="+bins.dir+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.Output()
			want := "s0010\ns0011\ns0012\ns0013\ns0014\ns0015\ns0016\ns0017\ns0018\ns0019\n"
			if err != nil || string(out) != want {
				t.Errorf("bash completion of 'clusto info s001': %v\n%s", err, out)
			}
		}
		res = complete("info", "s0001", "-o", "")
		if !strings.HasPrefix(res.stdout, "table\njson\nnames\n") {
			t.Errorf("-o values:\n%s", res.stdout)
		}
	})
}

// TestTokens covers --token, CLUSTO_TOKEN, the config file's token and the
// errors of a missing or weak one.
func TestTokens(t *testing.T) {
	srv, secrets := startServer(t, false, "alice=admin", "robot=read")
	r := newRunner(t, srv)
	r.run("whoami").expect(t, 1, "(give a token with --token, CLUSTO_TOKEN or the config file)")
	if res := r.ok("whoami", "--token", secrets["alice"]); !strings.HasPrefix(res.stdout, "alice (admin) at http://") {
		t.Errorf("whoami: %q", res.stdout)
	}
	robot := r.with("CLUSTO_TOKEN=" + secrets["robot"])
	robot.ok("drivers", "-o", "names")
	robot.run("create", "server", "x1").expect(t, 1, `token "robot" has the read role`)
	robot.run("whoami", "--token", "clusto_wrong").expect(t, 1, "the token is not valid")

	home := t.TempDir()
	cfg := filepath.Join(home, ".config", "clusto", "config")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	os.WriteFile(cfg, []byte("server: "+srv.url+"\ntoken: "+secrets["alice"]+"\n"), 0o644)
	cr := &runner{t: t, env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}}
	res := cr.run("create", "server", "x1")
	res.expect(t, 0, "holds a token and others may read it; chmod 600 it")
	if res.stdout != "created x1 (server), change 1\n" {
		t.Errorf("create with the config file's token: %q", res.stdout)
	}
}

// TestEditSession changes the demo inventory through every editing command.
func TestEditSession(t *testing.T) {
	srv, _ := startServer(t, true)
	s := &session{t: t, r: newRunner(t, srv)}
	s.run(0, "create", "server", "s0100", "status=unallocated", "memory_gb=64", "rack_row:=7", "disk.sda=ssd")
	s.run(4, "create", "server", "s0100")
	s.run(1, "create", "toaster", "t1")
	s.run(0, "attr", "add", "s0100", "nic", "eth0", "eth1", "--number", "next")
	s.run(0, "attr", "add", "s0100", "owner", "web-team")
	s.run(4, "attr", "add", "s0100", "owner", "web-team")
	s.run(0, "attr", "add", "s0100", "port", "8080", "--type", "int")
	s.run(0, "attr", "set", "s0100", "status", "allocated")
	s.run(0, "attr", "set", "s0100", "dns", "ns1.example.com", "ns2.example.com")
	s.run(0, "attr", "del", "s0100", "nic", "--number", "1")
	s.run(0, "attr", "del", "s0100", "dns", "ns2.example.com")
	s.run(3, "attr", "del", "s0100", "nothing")
	s.run(0, "attr", "get", "s0100")
	s.run(0, "insert", "rack101", "s0100", "--at", "30")
	s.run(0, "create", "server", "s0101")
	s.run(4, "insert", "rack101", "s0101", "--at", "30")
	s.run(1, "insert", "rack101", "s0101", "--at", "42", "--height", "2")
	s.run(0, "insert", "production", "s0100")
	s.run(0, "connect", "s0100", "switch101")
	s.run(0, "connect", "s0100", "pdu101")
	s.run(0, "connect", "s0100:console", "cons101")
	s.run(4, "connect", "s0101:eth0", "switch101:1")
	s.run(1, "connect", "s0101:eth9", "switch101")
	s.run(0, "locate", "s0100")
	s.run(0, "info", "s0100")
	s.run(0, "disconnect", "s0100", "switch101")
	s.run(3, "disconnect", "s0100", "switch101")
	s.run(0, "remove", "production", "s0100")
	s.run(0, "rename", "s0100", "web-07")
	s.run(4, "rename", "s0101", "web-07")
	s.run(4, "delete", "rack101")
	s.run(0, "delete", "web-07", "--cascade")
	s.run(3, "info", "web-07")
	s.run(0, "history", "web-07", "--limit", "4")
	s.run(0, "attr", "set", "s0101", "status", "spare", "--if-version", "1")
	s.run(4, "attr", "set", "s0101", "status", "broken", "--if-version", "1")
	s.run(0, "delete", "s0101", "-o", "names")
	s.run(0, "create", "server", "twin-a", "serial=DUP1")
	s.run(0, "create", "server", "twin-b", "serial=DUP1")
	s.run(4, "get", "dup1")
	s.check("session-edit")

	// A write's -o json is the API's answer.
	r := newRunner(t, srv)
	var e struct {
		Name  string `json:"name"`
		Attrs []any  `json:"attrs"`
	}
	res := r.ok("create", "server", "s0102", "status=spare", "-o", "json")
	if err := json.Unmarshal([]byte(res.stdout), &e); err != nil || e.Name != "s0102" || len(e.Attrs) != 1 {
		t.Errorf("create -o json: %v\n%s", err, res.stdout)
	}
}

// TestAllocateSession hands out addresses, rack units, names and entities.
func TestAllocateSession(t *testing.T) {
	srv, _ := startServer(t, true)
	s := &session{t: t, r: newRunner(t, srv)}
	s.run(0, "allocate", "ip", "rack101-net", "s0001", "--interface", "eth0")
	s.run(4, "allocate", "ip", "rack101-net", "s0002", "--address", "10.1.1.2")
	s.run(0, "allocate", "ip", "rack101-net", "s0002", "--count", "2", "-o", "names")
	s.run(0, "ipblock", "rack101-net", "--limit", "3")
	s.run(0, "release", "ip", "rack101-net", "10.1.1.2")
	s.run(3, "release", "ip", "rack101-net", "10.1.1.2")
	s.run(0, "create", "ipblock", "tiny", "cidr=192.168.9.0/30")
	s.run(0, "allocate", "ip", "tiny", "s0001", "--count", "2")
	s.run(4, "allocate", "ip", "tiny", "s0001")
	s.run(0, "create", "server", "s0100", "height:=2")
	s.run(0, "allocate", "ru", "rack101", "s0100")
	s.run(0, "create", "server", "s0101")
	s.run(4, "allocate", "ru", "rack101", "s0101", "--at", "4")
	s.run(0, "allocate", "ru", "rack101", "s0101", "--at", "40")
	s.run(0, "elevation", "rack101")
	s.run(0, "allocate", "name", "servers", "--driver", "server", "--count", "2", "status=unallocated", "memory_gb=256")
	s.run(0, "allocate", "driver:server and attr:status,unallocated in name:sfo1", "--count", "2", "--distinct", "rack", "--set", "status=allocated", "--dry-run")
	s.run(4, "allocate", "driver:server and attr:status,unallocated in name:sfo1", "--count", "3", "--distinct", "rack", "--set", "status=allocated")
	s.run(0, "allocate", "driver:server", "and", "attr:status,unallocated", "--count", "2", "--distinct", "rack", "--set", "status=allocated", "--set", "owner=ticket-42")
	s.run(2, "allocate", "driver:server and", "--count", "1")
	s.run(0, "changes", "--limit", "4")
	s.check("session-allocate")
}

// TestFilesSession loads a file into an empty server with plan and apply,
// then batches and exports.
func TestFilesSession(t *testing.T) {
	srv, _ := startServer(t, false)
	s := &session{t: t, r: newRunner(t, srv)}
	s.run(0, "plan", "testdata/site.yaml")
	s.run(0, "apply", "testdata/site.yaml")
	s.run(0, "plan", "testdata/site.yaml")
	s.run(1, "plan", "testdata/bad.yaml")
	s.run(0, "batch", "testdata/batch.json", "--dry-run")
	s.run(0, "batch", "testdata/batch.json")
	s.run(4, "batch", "testdata/batch-bad.yaml")
	s.run(3, "info", "s9004")
	s.run(1, "batch", "testdata/missing.json")
	s.run(0, "export", "name:r9 or driver:server in name:r9")
	s.run(0, "elevation", "r9")
	s.check("session-files")

	r := newRunner(t, srv)
	res := r.runIn(`[{"op": "create", "name": "tmp1", "driver": "server"}]`, "batch", "-", "-o", "names")
	if res.code != 0 || res.stdout != "tmp1\n" {
		t.Errorf("batch from stdin: %+v", res)
	}
	var p struct {
		Steps []struct {
			Action string `json:"action"`
		} `json:"steps"`
		Delete int `json:"delete"`
	}
	res = r.ok("plan", "testdata/site.yaml", "--prune", "--color", "always")
	if !strings.Contains(res.stdout, "\x1b[31m- delete\x1b[0m  s9003   delete s9003") {
		t.Errorf("plan in colour (the colour must not shift the columns):\n%q", res.stdout)
	}
	res = r.ok("plan", "testdata/site.yaml", "--prune", "-o", "json")
	if err := json.Unmarshal([]byte(res.stdout), &p); err != nil || p.Delete != 2 {
		t.Errorf("plan --prune -o json (s9003 and tmp1 are not in the file): %v %s", err, res.stdout)
	}
}

// TestChangesFollow runs 'clusto changes --follow' while another clusto
// makes a change, then interrupts it.
func TestChangesFollow(t *testing.T) {
	srv, _ := startServer(t, true)
	r := newRunner(t, srv)
	cmd := exec.Command(bins.clusto, "changes", "--follow", "--interval", "100ms", "--limit", "1")
	cmd.Env = r.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatal("no output from changes --follow")
		}
		return ""
	}
	if h := next(); !strings.HasPrefix(h, "CHANGE") {
		t.Fatalf("header %q", h)
	}
	next() // the latest change
	r.ok("attr", "set", "s0001", "status", "broken")
	if l := next(); !strings.Contains(l, "attr_set  s0001") || !strings.Contains(l, "status=unallocated -> status=broken") {
		t.Errorf("followed change: %q", l)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("changes --follow after an interrupt: %v", err)
	}
}

var (
	backupName  = regexp.MustCompile(`clusto-\d{8}T\d{6}Z`)
	backupBytes = regexp.MustCompile(`\b\d+ bytes`)
	backupSHA   = regexp.MustCompile(`sha256 [0-9a-f]{64}`)
	backupTook  = regexp.MustCompile(`took \d+ ms`)
	backupTime  = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z`)
	// A size in the BYTES column of backup --list, between its spaces.
	backupSize = regexp.MustCompile(`  \d{5,}  `)
)

// normalizeBackup replaces what changes from run to run in a backup's
// description: the time in its default name, its size (the stored
// timestamps vary in length), its checksum, how long it took and when
// its file was written.
func normalizeBackup(s string) string {
	s = backupName.ReplaceAllString(s, "clusto-20261122T100000Z")
	s = backupBytes.ReplaceAllString(s, "294912 bytes")
	s = backupSHA.ReplaceAllString(s, "sha256 b6efd05436495d83b5620a20ebd129ec71a6076dc03034fa120cd57a52de8b14")
	s = backupTime.ReplaceAllString(s, "2026-11-22T10:00:00Z")
	s = backupSize.ReplaceAllString(s, "  294912  ")
	return backupTook.ReplaceAllString(s, "took 9 ms")
}

// TestBackupSession takes backups on the server and downloads one, as an
// operator would, then checks what they wrote.
func TestBackupSession(t *testing.T) {
	srv, secrets := startServer(t, true, "ops=admin", "robot=write")
	work := t.TempDir()
	r := newRunner(t, srv, "CLUSTO_TOKEN="+secrets["ops"]).in(work)
	s := &session{t: t, r: r}
	s.run(0, "backup", "nightly.db")
	s.run(4, "backup", "nightly.db")
	s.run(1, "backup", "../nightly.db")
	s.run(0, "backup", "--download", "inventory.db")
	s.run(1, "backup", "--download", "inventory.db")
	s.run(2, "backup", "x.db", "--download", "y.db")
	s.run(0, "backup", "--list")
	s.run(0, "backup", "--delete", "nightly.db")
	s.run(3, "backup", "--delete", "nightly.db")
	s.run(0, "backup", "--list")
	s.run(2, "backup", "--list", "--delete", "x.db")
	golden(t, "session-backup", normalizeBackup(strings.TrimSuffix(s.tr.String(), "\n")))

	var b struct {
		Name   string `json:"name"`
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
		Change int64  `json:"change"`
	}
	res := r.ok("backup", "-o", "json")
	if err := json.Unmarshal([]byte(res.stdout), &b); err != nil || !backupName.MatchString(b.Name) || b.Change == 0 || len(b.SHA256) != 64 {
		t.Errorf("backup -o json: %v %s", err, res.stdout)
	}
	if res := r.ok("backup", "named.db", "-o", "names"); res.stdout != "named.db\n" {
		t.Errorf("backup -o names: %q", res.stdout)
	}
	names := strings.Fields(r.ok("backup", "--list", "-o", "names").stdout)
	slices.Sort(names)
	if len(names) != 2 || !backupName.MatchString(names[0]) || names[1] != "named.db" {
		t.Errorf("backup --list -o names: %q", names)
	}
	var listed struct {
		Backups []struct {
			Name  string `json:"name"`
			Bytes int64  `json:"bytes"`
		} `json:"backups"`
		Keep int `json:"keep"`
	}
	if err := json.Unmarshal([]byte(r.ok("backup", "--list", "-o", "json").stdout), &listed); err != nil || len(listed.Backups) != 2 || listed.Backups[0].Bytes == 0 {
		t.Errorf("backup --list -o json: %v %+v", err, listed)
	}
	r.with("CLUSTO_TOKEN="+secrets["robot"]).run("backup", "--list").expect(t, 1, "needs the admin role")
	r.with("CLUSTO_TOKEN="+secrets["robot"]).run("backup").expect(t, 1, `token "robot" has the write role`, "needs the admin role")
	r.with("CLUSTO_TOKEN="+secrets["robot"]).run("backup", "--download", "w.db").expect(t, 1, "needs the admin role")

	// The server kept what it was asked to keep (nightly.db was deleted),
	// owner-only; the download left one file here, no temporary one, and
	// it is a sound inventory.
	list := func(dir string) map[string]os.FileMode {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]os.FileMode{}
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			out[backupName.ReplaceAllString(e.Name(), "clusto-T")] = fi.Mode().Perm()
		}
		return out
	}
	if got, want := list(filepath.Join(filepath.Dir(srv.db), "backups")), map[string]os.FileMode{"clusto-T.db": 0o600, "named.db": 0o600}; !mapsEqual(got, want) {
		t.Errorf("server's backup directory: %v, want %v", got, want)
	}
	if got, want := list(work), map[string]os.FileMode{"inventory.db": 0o600}; !mapsEqual(got, want) {
		t.Errorf("working directory: %v, want %v", got, want)
	}
	out, err := exec.Command(bins.clustod, "check", "--db", filepath.Join(work, "inventory.db")).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok:") {
		t.Errorf("clustod check of the download: %v\n%s", err, out)
	}
}

// TestBackupKeep: a server keeping its newest automatically named backup
// removes the older one after the next, and backup says which.
func TestBackupKeep(t *testing.T) {
	t.Setenv("CLUSTO_BACKUP_KEEP", "1") // inherited by the clustod started below
	srv, secrets := startServer(t, true, "ops=admin")
	r := newRunner(t, srv, "CLUSTO_TOKEN="+secrets["ops"])
	first := strings.Fields(r.ok("backup", "-o", "names").stdout)
	if len(first) != 1 || !backupName.MatchString(first[0]) {
		t.Fatalf("first backup: %q", first)
	}
	out := r.ok("backup").stdout
	want := "removed 1 older backups to keep the newest (clustod serve --backup-keep): " + first[0] + "\n"
	if !strings.HasSuffix(out, want) {
		t.Errorf("second backup printed %q; want it to end with %q", out, want)
	}
	if left := strings.Fields(r.ok("backup", "--list", "-o", "names").stdout); len(left) != 1 || left[0] == first[0] {
		t.Errorf("after the second backup the server lists %q; want only the second", left)
	}
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestTokenAuditSession makes and revokes tokens over the API, as an admin
// would, and reads the audit list with clusto token audit.
func TestTokenAuditSession(t *testing.T) {
	srv, _ := startServer(t, false)
	ctx := context.Background()
	anon, err := client.New(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := anon.CreateToken(ctx, "ops", "admin") // while no token exists: anonymous
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(srv.url, client.WithToken(ops.Secret))
	if err != nil {
		t.Fatal(err)
	}
	robot, err := admin.CreateToken(ctx, "robot", "write")
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := admin.CreateToken(ctx, "viewer", "read")
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeToken(ctx, "robot"); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, srv, "CLUSTO_TOKEN="+ops.Secret)
	s := &session{t: t, r: r}
	s.run(0, "token", "audit")
	s.run(0, "token", "audit", "--since", "1", "--limit", "2")
	s.run(0, "token", "audit", "--since", "4")
	s.run(0, "token", "audit", "-o", "names")
	s.run(2, "token", "audit", "--limit", "0")
	s.run(2, "token")
	s.r = r.with("CLUSTO_TOKEN=" + viewer.Secret)
	s.run(1, "token", "audit")
	s.check("session-token-audit")

	var got client.TokenAudit
	res := r.ok("token", "audit", "-o", "json")
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || len(got.Events) != 4 || got.Next != 4 {
		t.Fatalf("token audit -o json: %v\n%s", err, res.stdout)
	}
	for _, ev := range got.Events {
		if ev.RequestID == "" {
			t.Errorf("event %d has no request id: %+v", ev.ID, ev)
		}
	}
	for _, secret := range []string{ops.Secret, robot.Secret, viewer.Secret} {
		if strings.Contains(res.stdout, secret) || strings.Contains(s.tr.String(), secret) {
			t.Errorf("the audit shows a token's secret:\n%s%s", res.stdout, s.tr.String())
		}
	}
}
