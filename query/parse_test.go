package query

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// parseCases cover every construct of the language, precedence and
// associativity, case-insensitivity, and the errors, each with its
// position. The golden file holds, for each, the printed tree or the
// error's kind, position and message with the caret rendering.
var parseCases = []string{
	// Terms.
	`*`,
	`name:web01`,
	`name:"web 01"`,
	`name:"quote \" backslash \\ tab \t unicode \u00e9"`,
	`name:rack0*`,
	`name:server?`,
	`name:/^s[0-9]{4}$/`,
	`name:/a\/b/`,
	`name:web-01.example.com`,
	`name:user@host`,
	`name:web:01`,
	`name: web01`,
	`driver:Server`,
	`driver:SERV*`,
	`driver:/^con/`,
	`driver:"Console-Server"`,
	`kind:equipment`,
	`kind:Group`,
	`kind:res*`,
	`attr:status`,
	`attr:status,unallocated`,
	`attr:status,"not yet"`,
	`attr:status,un*`,
	`attr:status,/^(spare|broken)$/`,
	`attr:disk.sda,ssd`,
	`attr:disk.sda`,
	`attr:foo,12`,
	`attr:memory_gb>=64`,
	`attr:memory_gb >= 64`,
	`attr:memory_gb=64`,
	`attr:memory_gb==64`,
	`attr:memory_gb!=64`,
	`attr:memory_gb<64`,
	`attr:memory_gb<=64`,
	`attr:memory_gb>64`,
	`attr:temp>-5`,
	`attr:temp<+5`,
	`ATTR:status,x`,
	`haskey:status`,
	`haskey:disk.sda`,
	`pool:web`,
	`pool:web*`,
	`role:db`,
	`class:bigmem`,
	`service:blog`,
	`ip:10.0.3.5`,
	`ip:10.0.3.0/24`,
	`ip:2001:db8::1`,
	`ip:2001:db8::/64`,
	`ip:::ffff:10.0.3.5`,
	`ip:::ffff:10.0.3.0/120`,
	`ip:"10.0.3.5"`,
	// Operators and precedence.
	`driver:server attr:status,unallocated`,
	`driver:server and attr:status,unallocated`,
	`name:a or name:b or name:c`,
	`name:a and name:b or name:c and name:d`,
	`name:a or name:b and name:c`,
	`not name:a`,
	`not not name:a`,
	`not name:a and name:b`,
	`not (name:a and name:b)`,
	`not A and B connected to C or D`,
	`not name:A and name:B connected to name:C or name:D`,
	`name:a connected to name:b`,
	`name:a connected to name:b via nic`,
	`name:a connected to name:b via Link`,
	`name:a connected to name:b via fiber-100g`,
	`name:a in name:b`,
	`name:a contains name:b`,
	`name:a in name:b in name:c`,
	`name:a in (name:b in name:c)`,
	`name:a connected to name:b in name:c`,
	`name:a in name:b or name:c`,
	`name:a in (name:b or name:c)`,
	`not name:a in name:b`,
	`(name:a)`,
	`((name:a or name:b))`,
	`driver:server and (attr:status,unallocated or attr:status,spare) in (driver:rack and attr:row,3)`,
	`driver:Console connected to name:server2`,
	`driver:Server connected to name:rack002`,
	`attr:foo,12 and driver:Server`,
	`driver:Server connected to name:rack002 and attr:status,unallocated`,
	`driver:server in name:datacenterZ and attr:status,unallocated`,
	`NOT name:a AND name:b OR name:c IN name:d CONNECTED TO name:e VIA NIC CONTAINS name:f`,
	"name:a\n  and name:b",
	// Syntax errors.
	``,
	"  \t\n ",
	`foo`,
	`foo:bar`,
	`name:`,
	`name:)`,
	`name:"unterminated`,
	`name:/unterminated`,
	`name:web and`,
	`name:web or or name:x`,
	`name:web name`,
	`name:web )`,
	`(name:web`,
	`((name:web) or (name:x`,
	`()`,
	`not`,
	`name:a connected name:b`,
	`name:a connected to`,
	`name:a in`,
	`name:a connected to name:b via`,
	`name:a in name:b via nic`,
	`name:a connected to name:b via "nic"`,
	`attr:`,
	`attr:status,`,
	`attr:status.`,
	`attr:status=up`,
	`attr:status>=`,
	`attr:1bad`,
	`attr:k>99999999999999999999`,
	`attr:status ,x`,
	`name:x >= 4`,
	`name:a,b`,
	`name:"bad \q escape"`,
	`name:"nul \x00"`,
	`name:a & name:b`,
	"name:x and\n  (driver:y",
	// Value errors.
	`name:/a(/`,
	`name:/[z-a]/`,
	`kind:server`,
	`haskey:sta*`,
	`haskey:/x/`,
	`haskey:1bad`,
	`ip:10.0.3.300`,
	`ip:10.0.3.5/24`,
	`ip:fe80::1%eth0`,
	`ip:web*`,
	`ip:10.0.0.0/33`,
}

func TestParseGolden(t *testing.T) {
	var b strings.Builder
	for _, text := range parseCases {
		fmt.Fprintf(&b, "query: %s\n", strconv.Quote(text))
		q, err := Parse(text)
		if err != nil {
			kind, line, col, ok := kindOf(err)
			if !ok {
				t.Errorf("Parse(%q): error %v is %T, not *SyntaxError or *entity.Error", text, err, err)
				continue
			}
			fmt.Fprintf(&b, "error: %s %d:%d: %s\n", kind, line, col, err.Error())
			if c := Caret(text, err); c != "" {
				for _, l := range strings.Split(c, "\n") {
					fmt.Fprintf(&b, "  | %s\n", l)
				}
			}
		} else {
			fmt.Fprintf(&b, "tree: %s\n", q)
			// The printed tree is stable under reparsing the query text.
			q2, err := Parse(q.Text())
			if err != nil || q2.String() != q.String() {
				t.Errorf("reparsing %q: %v, %v", text, q2, err)
			}
		}
		b.WriteString("\n")
	}
	golden := filepath.Join("testdata", "parse.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./query -run TestParseGolden -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("parse output differs from %s (-want +got):\n%s", golden, diff)
	}
}

// TestLimits checks the length and depth limits give clear errors.
func TestLimits(t *testing.T) {
	deepParens := strings.Repeat("(", MaxDepth) + "name:a" + strings.Repeat(")", MaxDepth)
	tooDeepParens := strings.Repeat("(", MaxDepth+1) + "name:a" + strings.Repeat(")", MaxDepth+1)
	nots := func(n int) string { return strings.Repeat("not ", n) + "name:a" }
	chain := func(n int) string { return "name:a" + strings.Repeat(" in name:a", n) }
	nested := func(n int) string { // n levels of or: a or (a or (... (a or a)))
		return strings.Repeat("name:a or (", n-1) + "name:a or name:a" + strings.Repeat(")", n-1)
	}
	long := "name:" + strings.Repeat("a", MaxLen-5)
	tests := []struct {
		name, text string
		kind       entity.ErrorKind // "" for success
		pos        string
	}{
		{"parens at the limit", deepParens, "", ""},
		{"parens over the limit", tooDeepParens, syntaxKind, fmt.Sprintf("1:%d", MaxDepth+1)},
		{"nots at the limit", nots(MaxDepth), "", ""},
		{"nots over the limit", nots(MaxDepth + 1), syntaxKind, fmt.Sprintf("1:%d", 4*MaxDepth+1)},
		{"relations at the limit", chain(MaxDepth), "", ""},
		{"relations over the limit", chain(MaxDepth + 1), syntaxKind, "1:1"},
		{"nested or at the limit", nested(MaxDepth), "", ""},
		{"nested or over the limit", nested(MaxDepth + 1), syntaxKind, fmt.Sprintf("1:%d", 11*MaxDepth+1)},
		{"length at the limit", long, "", ""},
		{"length over the limit", long + "a", entity.KindTooLarge, "0:0"},
		{"thousands of parens", strings.Repeat("(", 3000), syntaxKind, fmt.Sprintf("1:%d", MaxDepth+1)},
		{"thousands of nots", strings.Repeat("not ", 1000) + "*", syntaxKind, fmt.Sprintf("1:%d", 4*MaxDepth+1)},
		{"invalid UTF-8", "name:a\xff", syntaxKind, "1:7"},
		{"NUL in a regex", "name:/[\x00]/", syntaxKind, "1:8"},
		{"NUL in a string", "name:\"a\x00\"", syntaxKind, "1:8"},
		{"empty", "", syntaxKind, "0:0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			kind, line, col, ok := kindOf(err)
			if !ok {
				t.Fatalf("Parse: got %v (%T), want a *SyntaxError or an *entity.Error", err, err)
			}
			if kind != tc.kind || fmt.Sprintf("%d:%d", line, col) != tc.pos {
				t.Errorf("Parse: got %s at %d:%d (%s), want %s at %s", kind, line, col, err, tc.kind, tc.pos)
			}
		})
	}
}

func TestCaret(t *testing.T) {
	long := strings.Repeat("name:a or ", 20) + "name:)"
	_, err := Parse(long)
	tests := []struct {
		text string
		err  error
		want string
	}{
		{"name:a connected name:b", errPos(1, 18), "name:a connected name:b\n                 ^"},
		{"name:a\n\tand (", errPos(2, 7), "\tand (\n\t     ^"},
		{"name:a", errors.New("no position"), ""},
		{"name:a", entity.Errorf(entity.KindInvalid, "no position"), ""},
		{"name:a", errPos(3, 1), ""},
		{"name:a", errPos(1, 7), "name:a\n      ^"},
		{long, err, "...:a or name:a or name:a or name:a or name:a or name:a or name:a or name:)\n" +
			"                                                                          ^"},
	}
	for _, tc := range tests {
		if got := Caret(tc.text, tc.err); got != tc.want {
			t.Errorf("Caret(%q, %v):\ngot\n%s\nwant\n%s", tc.text, tc.err, got, tc.want)
		}
	}
}

func errPos(line, col int) error {
	return &SyntaxError{Message: "x", Line: line, Column: col}
}

// syntaxKind is how kindOf names a *SyntaxError: the server's code for it.
const syntaxKind entity.ErrorKind = "query_syntax"

// kindOf names an error of Parse or Run and its position: syntaxKind for
// a *SyntaxError, else the *entity.Error's kind; ok is false for any other
// error.
func kindOf(err error) (kind entity.ErrorKind, line, col int, ok bool) {
	var se *SyntaxError
	if errors.As(err, &se) {
		return syntaxKind, se.Line, se.Column, true
	}
	var e *entity.Error
	if errors.As(err, &e) {
		return e.Kind, e.Line, e.Column, true
	}
	return "", 0, 0, false
}

// BenchmarkParse measures the parser alone, and Parse with its cache.
func BenchmarkParse(b *testing.B) {
	for _, text := range []string{`name:dc04-r0421-s33`, `driver:server and (attr:status,unallocated or attr:status,spare) in (driver:rack and attr:row,3)`} {
		b.Run(strconv.Itoa(len(text))+"-bytes", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := parse(text); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(strconv.Itoa(len(text))+"-bytes-cached", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Parse(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestParseCache(t *testing.T) {
	q1, err := Parse("name:cached")
	if err != nil {
		t.Fatal(err)
	}
	q2, _ := Parse("name:cached")
	if q1 != q2 {
		t.Error("the same text was parsed twice")
	}
	for i := 0; i < 3*maxCachedQueries; i++ {
		if _, err := Parse(fmt.Sprintf("name:q%d", i)); err != nil {
			t.Fatal(err)
		}
		parsedMu.Lock()
		n := len(parsed)
		parsedMu.Unlock()
		if n > maxCachedQueries {
			t.Fatalf("the cache holds %d queries, more than %d", n, maxCachedQueries)
		}
	}
	if _, err := Parse("name:"); err == nil {
		t.Fatal("a bad query parsed")
	}
}

// TestRegexLiteral: the literal a regex's every match must contain, used
// to turn values away with instr before the regex runs; "" when there is
// none to be sure of (alternation, optional parts, case folding).
func TestRegexLiteral(t *testing.T) {
	for _, tc := range []struct{ re, want string }{
		{"rack0[0-9]+", "rack0"},
		{"-r0421-", "-r0421-"},
		{"s[0-9]+-web", "-web"},
		{"(ab)+cd", "ab"}, // "cd" would do as well: the first of the longest
		{"x(abc)+", "abc"},
		{"é✓", "é✓"},
		{`\.`, "."},
		{"a|b", ""},
		{"(abc)?d", "d"},
		{"(?i)rack", ""},
		{"[0-9]+", ""},
		{"^$", ""},
		{"(x{2,})y", "x"}, // simplified to xx+: the run stops at the repetition
		{"(", ""},
	} {
		if got := regexLiteral(tc.re); got != tc.want {
			t.Errorf("regexLiteral(%q) = %q, want %q", tc.re, got, tc.want)
		}
	}
}
