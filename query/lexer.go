package query

import (
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// The lexer, written by hand for speed (a query is lexed on every request;
// participle's regex-driven lexer cost more than the SQL of a lookup by
// name). It has three states, with these tokens:
//
//	Root   whitespace (skipped)
//	       AttrField  attr:                       (any case) -> Attr
//	       Field      IDENT:  (name:, ip:, ...)               -> Value
//	       Ident      [\pL_][\pL\pN_-]*           keywords and via types
//	       Op         >= <= != == = < >
//	       Number     [-+]?[0-9]+
//	       Punct      ( ) *
//	       Other      any other character
//	Value  whitespace (skipped), then one of
//	       Regex      /.../   (\ escapes any character)    -> back
//	       String     "..."   (\ escapes any character)    -> back
//	       Word       [\pL\pN_\-.@*?:][\pL\pN_\-./@*?:]*  -> back
//	       or nothing: back to the state before, at the same place
//	Attr   Key [A-Za-z_][A-Za-z0-9_-]*, Dot ., Comma , (-> Value),
//	       or anything else: back to Root, at the same place
//
// No input makes it fail: a character no rule expects becomes an Other
// token, so every mistake is reported by the parser, at its position,
// with what was expected there. Words may hold ':' so that IPv6 addresses
// need no quotes (ip:2001:db8::/64), and '/' except first (a regex).

// Token types, as participle numbers them: negative, EOF is -1.
const (
	tokAttrField lexer.TokenType = -2 - iota
	tokField
	tokIdent
	tokOp
	tokNumber
	tokPunct
	tokOther
	tokRegex
	tokString
	tokWord
	tokKey
	tokDot
	tokComma
)

var symbols = map[string]lexer.TokenType{
	"EOF": lexer.EOF, "AttrField": tokAttrField, "Field": tokField, "Ident": tokIdent, "Op": tokOp,
	"Number": tokNumber, "Punct": tokPunct, "Other": tokOther, "Regex": tokRegex, "String": tokString,
	"Word": tokWord, "Key": tokKey, "Dot": tokDot, "Comma": tokComma,
}

// queryLexer is the lexer.Definition participle is built with.
type queryLexerDef struct{}

var queryLexer queryLexerDef

func (queryLexerDef) Symbols() map[string]lexer.TokenType { return symbols }

func (d queryLexerDef) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return d.LexString(filename, string(b))
}

func (queryLexerDef) LexString(_ string, s string) (lexer.Lexer, error) {
	return &sliceLexer{toks: lex(s)}, nil
}

// sliceLexer hands out tokens lexed beforehand.
type sliceLexer struct {
	toks []lexer.Token
	i    int
}

func (l *sliceLexer) Next() (lexer.Token, error) {
	t := l.toks[l.i]
	if l.i < len(l.toks)-1 {
		l.i++
	}
	return t, nil
}

type lexState int

const (
	stRoot lexState = iota
	stValue
	stAttr
)

// lex splits s into tokens, ending with EOF.
func lex(s string) []lexer.Token {
	var toks []lexer.Token
	pos := lexer.Position{Line: 1, Column: 1}
	stack := []lexState{stRoot}
	emit := func(t lexer.TokenType, n int) {
		toks = append(toks, lexer.Token{Type: t, Value: s[pos.Offset : pos.Offset+n], Pos: pos})
		pos.Advance(s[pos.Offset : pos.Offset+n])
	}
	skipSpace := func() {
		i := pos.Offset
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			if !unicode.IsSpace(r) {
				break
			}
			i += size
		}
		pos.Advance(s[pos.Offset:i])
	}
	for {
		state := stack[len(stack)-1]
		if state != stAttr {
			skipSpace()
		}
		if pos.Offset >= len(s) {
			return append(toks, lexer.EOFToken(pos))
		}
		rest := s[pos.Offset:]
		switch state {
		case stValue:
			n, t := 0, lexer.TokenType(0)
			switch {
			case rest[0] == '/':
				n, t = quoted(rest, '/'), tokRegex
			case rest[0] == '"':
				n, t = quoted(rest, '"'), tokString
			default:
				n, t = span(rest, isWordStart, isWordChar), tokWord
			}
			stack = stack[:len(stack)-1]
			if n > 0 {
				emit(t, n)
			}
		case stAttr:
			switch {
			case rest[0] == '.':
				emit(tokDot, 1)
			case rest[0] == ',':
				emit(tokComma, 1)
				stack = append(stack, stValue)
			default:
				if n := span(rest, isKeyStart, isKeyChar); n > 0 {
					emit(tokKey, n)
				} else {
					stack = stack[:len(stack)-1]
				}
			}
		default:
			if n := span(rest, isIdentStart, isIdentChar); n > 0 {
				switch {
				case n < len(rest) && rest[n] == ':' && strings.EqualFold(rest[:n], "attr"):
					emit(tokAttrField, n+1)
					stack = append(stack, stAttr)
				case n < len(rest) && rest[n] == ':':
					emit(tokField, n+1)
					stack = append(stack, stValue)
				default:
					emit(tokIdent, n)
				}
				continue
			}
			switch {
			case strings.HasPrefix(rest, ">=") || strings.HasPrefix(rest, "<=") || strings.HasPrefix(rest, "!=") || strings.HasPrefix(rest, "=="):
				emit(tokOp, 2)
			case rest[0] == '=' || rest[0] == '<' || rest[0] == '>':
				emit(tokOp, 1)
			case rest[0] == '(' || rest[0] == ')' || rest[0] == '*':
				emit(tokPunct, 1)
			default:
				sign := 0
				if rest[0] == '-' || rest[0] == '+' {
					sign = 1
				}
				if d := span(rest[sign:], isDigit, isDigit); d > 0 {
					emit(tokNumber, sign+d)
					continue
				}
				_, size := utf8.DecodeRuneInString(rest)
				emit(tokOther, size)
			}
		}
	}
}

// quoted returns the length of the regex or string at the start of s,
// delimited by q with backslash escapes, or 0 when it does not close.
func quoted(s string, q byte) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i + 1
		}
	}
	return 0
}

// span returns the length of the run at the start of s whose first rune
// satisfies start and the others more.
func span(s string, start, more func(rune) bool) int {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if i == 0 && !start(r) || i > 0 && !more(r) {
			break
		}
		i += size
	}
	return i
}

func isDigit(r rune) bool      { return r >= '0' && r <= '9' }
func isIdentStart(r rune) bool { return unicode.IsLetter(r) || r == '_' }
func isIdentChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_' || r == '-'
}
func isKeyStart(r rune) bool {
	return r < utf8.RuneSelf && (r == '_' || r|0x20 >= 'a' && r|0x20 <= 'z')
}
func isKeyChar(r rune) bool { return isKeyStart(r) || isDigit(r) || r == '-' }
func isWordStart(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || strings.ContainsRune("_-.@*?:", r)
}
func isWordChar(r rune) bool { return isWordStart(r) || r == '/' }
