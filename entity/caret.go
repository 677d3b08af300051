package entity

import "strings"

// Caret shows a position in text (a query, a file): the line, and a caret under the column
// (1-based, in characters), as much of a long line as fits 72 columns
// around it. The CLI prints it under a syntax error, and the web UI shows
// the same lines.
func Caret(text string, line, column int) string {
	lines := strings.Split(text, "\n")
	if line < 1 || line > len(lines) || column < 1 {
		return ""
	}
	l := []rune(strings.TrimRight(lines[line-1], "\r"))
	col := min(column-1, len(l))
	const span = 72
	pre, post := "", ""
	if len(l) > span {
		start := max(0, col-span/2)
		end := min(len(l), start+span)
		start = max(0, end-span)
		if start > 0 {
			pre = "..."
		}
		if end < len(l) {
			post = "..."
		}
		l, col = l[start:end], col-start
	}
	var pad strings.Builder
	pad.WriteString(strings.Repeat(" ", len(pre)))
	for _, r := range l[:col] {
		if r == '\t' {
			pad.WriteRune('\t')
		} else {
			pad.WriteByte(' ')
		}
	}
	return pre + string(l) + post + "\n" + pad.String() + "^\n"
}
