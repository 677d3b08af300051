package query

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/clusto/clusto/entity"
)

// Limits on a query's text.
const (
	// MaxLen is the longest query accepted, in bytes.
	MaxLen = 4 << 10
	// MaxDepth bounds both the nesting of parentheses and the nesting of
	// operators (or, and, not, relations) in the parsed query.
	MaxDepth = 32
)

// Query is a parsed query. It is immutable and safe for concurrent use.
type Query struct {
	text string
	root node
}

// String prints the query's syntax tree in a fully parenthesised form,
// e.g. (and (driver "server") (attr status "unallocated")). Two queries
// with the same tree mean the same thing.
func (q *Query) String() string { return q.root.String() }

// Text returns the query as it was written.
func (q *Query) Text() string { return q.text }

// sym names the token types, for reading tokens back.
var sym = symbols

// parsed caches parse trees by query text: scripts and dashboards send
// the same few queries again and again, and participle's reflective
// parser costs tens of microseconds, as much as the SQL of a lookup by
// name. A Query is immutable, so one can be shared. Past maxCachedQueries
// entries, half of them (arbitrary ones) are dropped.
const maxCachedQueries = 512

var (
	parsedMu sync.Mutex
	parsed   = map[string]*Query{}
)

// Parse parses a query. Text that does not parse is a *SyntaxError with
// the Line and Column of the offending token and what was expected there;
// a well-formed term with a bad value (a regex that does not compile, an
// address that is not one) is an *entity.Error of kind invalid, located
// the same way (see Position); text over MaxLen bytes is one of kind
// too_large.
func Parse(text string) (*Query, error) {
	parsedMu.Lock()
	q, ok := parsed[text]
	parsedMu.Unlock()
	if ok {
		return q, nil
	}
	q, err := parse(text)
	if err != nil {
		return nil, err
	}
	parsedMu.Lock()
	if len(parsed) >= maxCachedQueries {
		for k := range parsed {
			delete(parsed, k)
			if len(parsed) <= maxCachedQueries/2 {
				break
			}
		}
	}
	parsed[text] = q
	parsedMu.Unlock()
	return q, nil
}

func parse(text string) (*Query, error) {
	if len(text) > MaxLen {
		return nil, entity.Errorf(entity.KindTooLarge, "the query is %d bytes long; the limit is %d", len(text), MaxLen)
	}
	if !utf8.ValidString(text) {
		i := 0
		for i < len(text) {
			r, size := utf8.DecodeRuneInString(text[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return nil, syntaxAt(posAt(text, i), "the query is not valid UTF-8")
	}
	// SQLite would cut a bound text at a NUL; no name or value holds one.
	if i := strings.IndexByte(text, 0); i >= 0 {
		return nil, syntaxAt(posAt(text, i), "the query contains a NUL character")
	}
	if strings.TrimSpace(text) == "" {
		return nil, &SyntaxError{Message: "the query is empty: give a term such as driver:server or name:web01, or * for every entity"}
	}
	toks := lex(text)
	if err := checkParens(toks); err != nil {
		return nil, err
	}
	peek, err := lexer.Upgrade(&sliceLexer{toks: toks})
	if err != nil {
		return nil, entity.Internal("parse query", err)
	}
	tree, err := parser.ParseFromLexer(peek)
	if err != nil {
		return nil, syntaxError(text, toks, err)
	}
	root, err := converter{}.or(tree)
	if err != nil {
		return nil, err
	}
	if deep := tooDeep(root, 0, MaxDepth); deep != nil {
		return nil, syntaxAt(deep.position(), "the query nests operators deeper than %d levels", MaxDepth)
	}
	return &Query{text: text, root: root}, nil
}

// checkParens rejects parentheses nested deeper than MaxDepth before the
// recursive-descent parser sees them.
func checkParens(toks []lexer.Token) error {
	d := 0
	for _, t := range toks {
		if t.Type != sym["Punct"] {
			continue
		}
		switch t.Value {
		case "(":
			d++
			if d > MaxDepth {
				return syntaxAt(t.Pos, "parentheses nest deeper than %d levels", MaxDepth)
			}
		case ")":
			d--
		}
	}
	return nil
}

var keywords = map[string]bool{"and": true, "or": true, "not": true, "connected": true, "to": true, "via": true, "in": true, "contains": true}

const termHint = "a term such as name:web01, driver:server, attr:status,spare, pool:web, * or a parenthesised expression"

// syntaxError turns participle's error into a *SyntaxError at the same
// position that says what was expected there, judged from the token
// before it.
func syntaxError(text string, toks []lexer.Token, err error) error {
	var perr participle.Error
	if !errors.As(err, &perr) {
		return entity.Internal("parse query", err)
	}
	pos := perr.Position()
	at := -1
	for i, t := range toks {
		if t.Pos.Offset >= pos.Offset {
			at = i
			break
		}
	}
	if at < 0 {
		return syntaxAt(pos, "%s", perr.Message())
	}
	cur := toks[at]
	found := describe(cur)
	var prev *lexer.Token
	if at > 0 {
		prev = &toks[at-1]
	}
	lower := func(t *lexer.Token) string { return strings.ToLower(t.Value) }
	// A pattern is read only after a field or attr:KEY's comma; a quote or
	// slash left unread there opened a string or regex that never closes.
	valuePos := prev != nil && (prev.Type == sym["Field"] || prev.Type == sym["Comma"])
	switch {
	case valuePos && cur.Type == sym["Other"] && cur.Value == `"`:
		return syntaxAt(pos, `unterminated string: a quoted string needs a closing "`)
	case valuePos && cur.Type == sym["Other"] && cur.Value == "/":
		return syntaxAt(pos, "unterminated regex: a regex needs a closing /")
	case prev == nil || (prev.Type == sym["Ident"] && (lower(prev) == "not" || lower(prev) == "and" || lower(prev) == "or" ||
		lower(prev) == "to" || lower(prev) == "in" || lower(prev) == "contains")) || (prev.Type == sym["Punct"] && prev.Value == "("):
		if cur.Type == sym["Ident"] && !keywords[strings.ToLower(cur.Value)] {
			return syntaxAt(pos, "unknown keyword %q: expected %s", cur.Value, termHint)
		}
		if prev == nil {
			return syntaxAt(pos, "expected %s, found %s", termHint, found)
		}
		return syntaxAt(pos, "expected %s after %q, found %s", termHint, prev.Value, found)
	case prev.Type == sym["Field"]:
		return syntaxAt(pos, `expected a pattern after %s (a word, a "quoted string", a glob* or a /regex/), found %s`, prev.Value, found)
	case prev.Type == sym["Comma"]:
		return syntaxAt(pos, `expected a pattern after the comma of attr:KEY,PATTERN (a word, a "quoted string", a glob* or a /regex/), found %s`, found)
	case prev.Type == sym["AttrField"]:
		return syntaxAt(pos, "expected an attribute key after attr: (attr:status, attr:status,spare, attr:memory_gb>=64), found %s", found)
	case prev.Type == sym["Dot"]:
		return syntaxAt(pos, "expected a subkey after the dot of attr:KEY.SUBKEY, found %s", found)
	case prev.Type == sym["Op"]:
		if cur.Type == sym["Ident"] {
			return syntaxAt(pos, "expected an integer after %q, found %s (to match text, write attr:KEY,VALUE)", prev.Value, found)
		}
		return syntaxAt(pos, "expected an integer after %q, found %s", prev.Value, found)
	case prev.Type == sym["Ident"] && lower(prev) == "connected":
		return syntaxAt(pos, `expected "to" after "connected", found %s`, found)
	case prev.Type == sym["Ident"] && lower(prev) == "via":
		return syntaxAt(pos, "expected a connection type (contains, member, link) or a port type (nic, console, power, ...) after via, found %s", found)
	}
	// After a complete term: an unclosed parenthesis, a stray one, or
	// something that cannot follow a term.
	var open []lexer.Token
	for _, t := range toks[:at] {
		if t.Type == sym["Punct"] && t.Value == "(" {
			open = append(open, t)
		} else if t.Type == sym["Punct"] && t.Value == ")" && len(open) > 0 {
			open = open[:len(open)-1]
		}
	}
	switch {
	case cur.Type == sym["Punct"] && cur.Value == ")" && len(open) == 0:
		return syntaxAt(pos, `unexpected ")": there is no "(" for it to close`)
	case len(open) > 0 && cur.EOF():
		o := open[len(open)-1]
		return syntaxAt(pos, `expected ")" to close the "(" at %s, found the end of the query`, where(o.Pos))
	case len(open) > 0:
		o := open[len(open)-1]
		return syntaxAt(pos, `expected and, or, a term, connected to, in, contains, or ")" to close the "(" at %s; found %s`, where(o.Pos), found)
	case cur.Type == sym["Op"]:
		return syntaxAt(pos, "unexpected %s: only attr:KEY takes a comparison (attr:memory_gb>=64)", found)
	case cur.Type == sym["Ident"] && !keywords[strings.ToLower(cur.Value)]:
		return syntaxAt(pos, "unknown keyword %q: expected and, or, not, connected to, in, contains, or %s", cur.Value, termHint)
	}
	return syntaxAt(pos, "unexpected %s: expected and, or, not, connected to, in, contains, %s, or the end of the query", found, termHint)
}

func describe(t lexer.Token) string {
	if t.EOF() {
		return "the end of the query"
	}
	v := t.Value
	if utf8.RuneCountInString(v) > 40 {
		v = string([]rune(v)[:40]) + "..."
	}
	return strconv.Quote(v)
}

// Caret renders the line of text that err points at with a caret under
// its column, for terminals:
//
//	driver:server connected name:rack002
//	                        ^
//
// It returns "" when err carries no position. Long lines are cut to a
// window around the column.
func Caret(text string, err error) string {
	lineNo, colNo := Position(err)
	if lineNo < 1 || colNo < 1 {
		return ""
	}
	lines := strings.Split(text, "\n")
	if lineNo > len(lines) {
		return ""
	}
	line := []rune(strings.TrimRight(lines[lineNo-1], "\r"))
	col := colNo - 1
	if col > len(line) {
		col = len(line)
	}
	const width = 72
	prefix := ""
	if len(line) > width {
		start := max(0, col-width/2)
		end := min(len(line), start+width)
		start = max(0, end-width)
		if start > 0 {
			prefix = "..."
		}
		suffix := ""
		if end < len(line) {
			suffix = "..."
		}
		line, col = line[start:end], col-start
		return prefix + string(line) + suffix + "\n" + pad(prefix, line, col) + "^"
	}
	return string(line) + "\n" + pad("", line, col) + "^"
}

// pad is the whitespace that puts a caret under rune col of line,
// keeping tabs so that terminals align it.
func pad(prefix string, line []rune, col int) string {
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", len(prefix)))
	for _, r := range line[:col] {
		if r == '\t' {
			b.WriteRune('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// posAt returns the position of byte offset off in text.
func posAt(text string, off int) lexer.Position {
	pos := lexer.Position{Offset: off, Line: 1, Column: 1}
	before := text[:off]
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		pos.Line += strings.Count(before, "\n")
		before = before[i+1:]
	}
	pos.Column += utf8.RuneCountInString(before)
	return pos
}

// Position returns where in the query err points (1-based line and
// column): a SyntaxError's position, or that of an entity.Error the
// compiler located in the query (a bad regex, an integer out of range);
// 0, 0 when err has none.
func Position(err error) (line, column int) {
	var se *SyntaxError
	if errors.As(err, &se) {
		return se.Line, se.Column
	}
	var e *entity.Error
	if errors.As(err, &e) {
		return e.Line, e.Column
	}
	return 0, 0
}
