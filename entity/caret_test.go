package entity

import (
	"strings"
	"testing"
)

func TestCaret(t *testing.T) {
	for _, c := range []struct {
		text         string
		line, column int
		want         string
	}{
		{"driver:server and", 1, 18, "driver:server and\n                 ^\n"},
		{"a\n\tbad", 2, 2, "\tbad\n\t^\n"},
		{"näme:x y", 1, 8, "näme:x y\n       ^\n"},
		{"x", 3, 1, ""},
		{strings.Repeat("a", 100) + "!" + strings.Repeat("b", 100), 1, 101,
			"..." + strings.Repeat("a", 36) + "!" + strings.Repeat("b", 35) + "...\n" + strings.Repeat(" ", 39) + "^\n"},
	} {
		if got := Caret(c.text, c.line, c.column); got != c.want {
			t.Errorf("Caret(%q, %d, %d) =\n%q\nwant\n%q", c.text, c.line, c.column, got, c.want)
		}
	}
}
