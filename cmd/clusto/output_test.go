package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/clusto/clusto/client"
)

func TestRenderTableFits(t *testing.T) {
	a := newApp(nil, nil, nil, func(string) string { return "" })
	tb := newTable("NAME", "DESCRIPTION", "N").alignRight(2)
	tb.add("s0001", "a rather long description of a server that will not fit", "7")
	tb.add("s0002", "short", "12")
	for _, width := range []int{0, 80, 40, 24, 10} {
		var buf bytes.Buffer
		a.renderTable(&buf, tb, width, "")
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("width %d: %d lines:\n%s", width, len(lines), buf.String())
		}
		for _, l := range lines {
			if width > 0 && utf8.RuneCountInString(l) > width {
				t.Errorf("width %d: line %q is %d wide", width, l, utf8.RuneCountInString(l))
			}
			if l != strings.TrimRight(l, " ") {
				t.Errorf("width %d: trailing spaces in %q", width, l)
			}
		}
		if width == 0 && strings.Contains(buf.String(), "…") {
			t.Errorf("no width limit, yet shortened:\n%s", buf.String())
		}
		if width == 40 {
			want := "NAME   DESCRIPTION                     N\n" +
				"s0001  a rather long description of…   7\n" +
				"s0002  short                          12\n"
			if buf.String() != want {
				t.Errorf("width 40:\n%s\nwant:\n%s", buf.String(), want)
			}
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{{"abc", 3, "abc"}, {"abcd", 3, "ab…"}, {"äöüß", 2, "ä…"}, {"abc", 0, ""}, {"abc", 1, "…"}} {
		if got := truncate(c.in, c.n); got != c.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestParseAttrArg(t *testing.T) {
	for in, want := range map[string]attrArg{
		"status=spare":     {key: "status", value: "spare"},
		"disk.sda=ssd":     {key: "disk", subkey: "sda", value: "ssd"},
		"note=a=b":         {key: "note", value: "a=b"},
		"row:=7":           {key: "row", value: json.RawMessage("7")},
		`tags:=["a","b"]`:  {key: "tags", value: json.RawMessage(`["a","b"]`)},
		"empty=":           {key: "empty", value: ""},
		"url=http://x:1/y": {key: "url", value: "http://x:1/y"},
	} {
		got, err := parseAttrArg(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		gj, _ := json.Marshal(got.value)
		wj, _ := json.Marshal(want.value)
		if got.key != want.key || got.subkey != want.subkey || string(gj) != string(wj) {
			t.Errorf("%q = %+v, want %+v", in, got, want)
		}
	}
	for _, bad := range []string{"novalue", "=x", "row:=seven", ".sub=x"} {
		if _, err := parseAttrArg(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if exitCode(err) != exitUsage {
			t.Errorf("%q: exit code %d", bad, exitCode(err))
		}
	}
}

func TestEndpointAndPorts(t *testing.T) {
	for in, want := range map[string][2]string{"s1:eth0": {"s1", "eth0"}, "s1": {"s1", ""}, "a:b:3": {"a:b", "3"}, ":x": {":x", ""}} {
		if n, p := endpoint(in); n != want[0] || p != want[1] {
			t.Errorf("endpoint(%q) = %q, %q", in, n, p)
		}
	}
	ports := []string{"1", "2", "3", "4", "mgmt", "ge-0/0/0", "ge-0/0/1", "ge-0/0/2", "psu1", "psu2"}
	if got := compactPorts(ports); got != "1-4 mgmt ge-0/0/0-2 psu1 psu2" {
		t.Errorf("compactPorts = %q", got)
	}
}

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{&client.Error{Code: client.CodeNotFound}, exitNotFound},
		{&client.Error{Code: client.CodeConflict}, exitConflict},
		{&client.Error{Code: "exhausted"}, exitConflict},
		{&client.Error{Code: "insufficient"}, exitConflict},
		{&client.Error{Code: client.CodePrecondition}, exitConflict},
		{&client.Error{Code: client.CodeQuerySyntax}, exitUsage},
		{&client.Error{Code: client.CodeInvalid}, exitError},
		{&client.Error{Code: client.CodeForbidden}, exitError},
		{&client.UnreachableError{Server: "http://x"}, exitUnreachable},
		{usagef("x"), exitUsage},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%#v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	ch := func(op, entity, before, after string) client.Change {
		return client.Change{Op: op, Entity: entity, Before: json.RawMessage(before), After: json.RawMessage(after)}
	}
	for _, c := range []struct {
		c     client.Change
		about string
		want  string
	}{
		{ch("rename", "b", `{"name":"a"}`, `{"name":"b"}`), "", "a -> b"},
		{ch("attr_set", "s1", `[{"key":"status","number":null,"value":"spare","type":"string"}]`, `[{"key":"status","number":null,"value":"allocated","type":"string"}]`), "", "status=spare -> status=allocated"},
		{ch("attr_del", "s1", `[{"key":"disk","number":2,"value":"ssd","type":"string"}]`, `null`), "", "-disk#2=ssd"},
		{ch("insert", "s1", `null`, `{"type":"contains","parent":"r1","child":"s1","position":20,"height":2}`), "", "into r1 RU20-21"},
		{ch("insert", "s1", `null`, `{"type":"contains","parent":"r1","child":"s1","position":20,"height":2}`), "r1", "into r1 RU20-21"},
		{ch("remove", "s1", `{"type":"member","group":"web","member":"s1"}`, `null`), "", "out of group web"},
		{ch("link", "sw1", `null`, `{"a":"sw1","a_port":"4","b":"s1","b_port":"eth0","type":"nic"}`), "s1", "s1:eth0 <-> sw1:4"},
		{ch("link", "sw1", `null`, `{"a":"sw1","a_port":"4","b":"s1","b_port":"eth0","type":"nic"}`), "", "sw1:4 <-> s1:eth0"},
		{ch("release", "s1", `{"address":"10.0.0.5","block":"net","entity":"s1","interface":""}`, `null`), "", "10.0.0.5 back to net"},
		{ch("delete", "s1", `{"name":"s1","driver":"server"}`, `null`), "", "was a server"},
		{ch("frobnicate", "s1", `null`, `{"x": 1}`), "", `{"x":1}`},
	} {
		if got := summarize(c.c, c.about); got != c.want {
			t.Errorf("summarize(%s, about %q) = %q, want %q", c.c.Op, c.about, got, c.want)
		}
	}
}

// TestMoreNote: the note under a page says "at least" when the server's
// total is a lower bound (its default past 1,000 matches), and the exact
// total otherwise.
func TestMoreNote(t *testing.T) {
	for _, tc := range []struct {
		shown, total int
		atLeast      bool
		want         string
	}{
		{3, 32, false, "clusto: showing 3 of 32; use --all for every match, or --limit N"},
		{100, 1000, true, "clusto: showing 100 of at least 1000; use --all for every match, or --limit N"},
		{100, 38270, false, "clusto: showing 100 of 38270; use --all for every match, or --limit N"},
	} {
		if got := moreNote(tc.shown, tc.total, tc.atLeast); got != tc.want {
			t.Errorf("moreNote(%d, %d, %v) = %q, want %q", tc.shown, tc.total, tc.atLeast, got, tc.want)
		}
	}
}
