package query

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
)

// FuzzQuery parses, compiles and runs arbitrary text with arbitrary
// options on the fixture inventory. Whatever the input, there is no
// panic, and every error is a *SyntaxError or an *entity.Error of a kind the user caused
// (query_syntax, invalid, too_large): never an internal one, which would
// mean the compiler wrote SQL that SQLite rejected. The seed corpus is in
// testdata/fuzz/FuzzQuery, plus every query of the parser's golden test.
//
//	go test ./query -run '^$' -fuzz FuzzQuery -fuzztime 60s -parallel 1
func FuzzQuery(f *testing.F) {
	for _, text := range parseCases {
		f.Add(text, int64(0), 0, "")
	}
	st, before := fixture(f)
	db := st.Reader()
	f.Fuzz(func(t *testing.T, text string, at int64, limit int, cursor string) {
		if at > before+5 {
			at %= before + 5
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := Run(ctx, db, text, Options{At: at, Limit: limit, Cursor: cursor})
		if err != nil {
			kind, line, col, ok := kindOf(err)
			if !ok {
				t.Fatalf("Run(%q): error %v is %T, not *SyntaxError or *entity.Error", text, err, err)
			}
			switch kind {
			case syntaxKind, entity.KindInvalid, entity.KindTooLarge:
			default:
				t.Fatalf("Run(%q, at %d): %s error: %v (cause: %v)", text, at, kind, err, errors.Unwrap(err))
			}
			if line < 0 || col < 0 || (line == 0) != (col == 0) {
				t.Fatalf("Run(%q): bad position %d:%d", text, line, col)
			}
			Caret(text, err) // must not panic
			return
		}
		if res.Total < len(res.Results) {
			t.Fatalf("Run(%q): total %d < %d results", text, res.Total, len(res.Results))
		}
		for i := 1; i < len(res.Results); i++ {
			if res.Results[i-1].Name >= res.Results[i].Name {
				t.Fatalf("Run(%q): results out of order: %q before %q", text, res.Results[i-1].Name, res.Results[i].Name)
			}
		}
	})
}
