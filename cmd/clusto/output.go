package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// ANSI styles.
const (
	bold  = "\x1b[1m"
	dim   = "\x1b[2m"
	red   = "\x1b[31m"
	green = "\x1b[32m"
	reset = "\x1b[0m"
)

// fdOf is the file descriptor behind w, if it is a file.
func fdOf(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	return int(f.Fd()), true
}

func isTerminal(w io.Writer) bool {
	fd, ok := fdOf(w)
	return ok && term.IsTerminal(fd)
}

// colorOn says whether to colour what goes to w: never with NO_COLOR (any
// value) or TERM=dumb, always with --color=always, otherwise only on a
// terminal.
func (a *app) colorOn(w io.Writer) bool {
	if a.getenv("NO_COLOR") != "" || a.color == "never" {
		return false
	}
	if a.color == "always" {
		return true
	}
	return a.getenv("TERM") != "dumb" && isTerminal(w)
}

// paint wraps s in a style when w takes colour.
func (a *app) paint(w io.Writer, style, s string) string {
	if !a.colorOn(w) {
		return s
	}
	return style + s + reset
}

// width is the number of columns output may use: the terminal's width,
// else $COLUMNS, else 0 (no limit: a pipe gets whole lines).
func (a *app) width() int {
	if fd, ok := fdOf(a.stdout); ok && term.IsTerminal(fd) {
		if w, _, err := term.GetSize(fd); err == nil && w > 0 {
			return w
		}
	}
	if n, err := strconv.Atoi(a.getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}

// printJSON writes v as indented JSON, as the API sends it (no HTML
// escaping, so "a -> b" stays readable).
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) println(args ...any) { fmt.Fprintln(a.stdout, args...) }

func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

// table is rows of cells under a header.
type table struct {
	head []string
	rows [][]string
	// right aligns these columns to the right (numbers).
	right map[int]bool
	// style, when set, colours a cell of a row (not the header): an ANSI
	// style, or "".
	style func(row, col int) string
}

func newTable(head ...string) *table { return &table{head: head} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) alignRight(cols ...int) *table {
	if t.right == nil {
		t.right = map[int]bool{}
	}
	for _, c := range cols {
		t.right[c] = true
	}
	return t
}

const colGap = 2

// printTable writes the table fitted to the width: when the natural widths
// do not fit, the widest columns give way first, down to the header's
// width (at least 6), and a cell that does not fit its column ends in
// "…". A line never wraps: past the narrowest layout lines are cut.
func (a *app) printTable(t *table) {
	a.renderTable(a.stdout, t, a.width(), "")
}

func (a *app) renderTable(w io.Writer, t *table, width int, prefix string) {
	n := len(t.head)
	widths := make([]int, n)
	for i, h := range t.head {
		widths[i] = runeLen(h)
	}
	for _, r := range t.rows {
		for i := 0; i < n && i < len(r); i++ {
			widths[i] = max(widths[i], runeLen(r[i]))
		}
	}
	if width > 0 {
		fitWidths(widths, t.head, width-runeLen(prefix))
	}
	// Styles go around a cell's text after the layout, so that escape
	// codes never count as width.
	line := func(row int, cells []string, style string) {
		var b strings.Builder
		b.WriteString(prefix)
		room := width - runeLen(prefix)
		for i := 0; i < n; i++ {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			cell = truncate(cell, widths[i])
			if width > 0 {
				// Past the narrowest layout: cut the line, never wrap it.
				cell = truncate(cell, max(room, 0))
				room -= runeLen(cell)
			}
			pad := strings.Repeat(" ", widths[i]-runeLen(cell))
			if (i == n-1 && !t.right[i]) || (width > 0 && room <= 0) {
				pad = ""
			}
			cs := style
			if row >= 0 && t.style != nil {
				cs = t.style(row, i)
			}
			text := cell
			if cs != "" && cell != "" {
				text = a.paint(w, cs, cell)
			}
			if t.right[i] {
				b.WriteString(pad + text)
			} else {
				b.WriteString(text + pad)
			}
			if width > 0 {
				room -= runeLen(pad)
			}
			if i < n-1 {
				gap := colGap
				if width > 0 {
					gap = min(colGap, max(room, 0))
					room -= gap
				}
				b.WriteString(strings.Repeat(" ", gap))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(-1, t.head, bold)
	for i, r := range t.rows {
		line(i, r, "")
	}
}

// fitWidths shrinks column widths until the row fits width.
func fitWidths(widths []int, head []string, width int) {
	total := func() int {
		s := colGap * (len(widths) - 1)
		for _, w := range widths {
			s += w
		}
		return s
	}
	over := total() - width
	for over > 0 {
		widest := -1
		for i, w := range widths {
			if w > max(runeLen(head[i]), 6) && (widest < 0 || w >= widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			return
		}
		widths[widest]--
		over--
	}
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// truncate cuts s to n characters, ending in "…" when cut.
func truncate(s string, n int) string {
	if runeLen(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// timeText is a time as tables show it: UTC, to the second.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
