package query

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The grammar, one struct per precedence level, loosest first. participle
// fills Pos with the position of each node's first token.

type gOr struct {
	Pos   lexer.Position
	Terms []*gAnd `parser:"@@ ( 'or' @@ )*"`
}

// gAnd: "and" is optional: juxtaposed terms are and-ed.
type gAnd struct {
	Pos   lexer.Position
	Terms []*gNot `parser:"@@ ( 'and'? @@ )*"`
}

type gNot struct {
	Pos lexer.Position
	Not *gNot `parser:"(  'not' @@"`
	Rel *gRel `parser:" | @@ )"`
}

// gRel is a term followed by relations; each takes a term on its right,
// so A in B in C reads (A in B) in C.
type gRel struct {
	Pos  lexer.Position
	Left *gTerm    `parser:"@@"`
	Ops  []*gRelOp `parser:"@@*"`
}

type gRelOp struct {
	Pos       lexer.Position
	Connected bool         `parser:"(  @'connected' 'to'"`
	In        bool         `parser:" | @'in'"`
	Contains  bool         `parser:" | @'contains' )"`
	Right     *gTerm       `parser:"@@"`
	Via       *lexer.Token `parser:"( 'via' @Ident )?"`
}

type gTerm struct {
	Pos   lexer.Position
	Sub   *gOr    `parser:"(  '(' @@ ')'"`
	All   bool    `parser:" | @'*'"`
	Attr  *gAttr  `parser:" | @@"`
	Field *gField `parser:" | @@ )"`
}

type gAttr struct {
	Pos     lexer.Position
	Key     lexer.Token  `parser:"AttrField @Key"`
	Subkey  *lexer.Token `parser:"( Dot @Key )?"`
	Pattern *gPattern    `parser:"( Comma @@"`
	Op      *lexer.Token `parser:" | @Op"`
	Number  *lexer.Token `parser:"   @Number )?"`
}

type gField struct {
	Pos   lexer.Position
	Field string    `parser:"@Field"`
	Value *gPattern `parser:"@@"`
}

type gPattern struct {
	Pos    lexer.Position
	Regex  *string `parser:"(  @Regex"`
	String *string `parser:" | @String"`
	Word   *string `parser:" | @Word )"`
}

var parser = participle.MustBuild[gOr](
	participle.Lexer(queryLexer),
	participle.CaseInsensitive("Ident"),
)
