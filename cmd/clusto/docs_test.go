package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// transcripts splits text into runs, each from a "$ clusto" line to the
// next, without trailing blank lines.
func transcripts(text string) []string {
	var out []string
	var cur []string
	flush := func() {
		if cur != nil {
			out = append(out, strings.TrimRight(strings.Join(cur, "\n"), "\n"))
		}
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "$ clusto") {
			flush()
			cur = []string{l}
		} else if cur != nil {
			cur = append(cur, l)
		}
	}
	flush()
	return out
}

// TestDocsMatchGoldens keeps docs/cli.md true: every run in a ```console
// block is a run of some golden file, so a change of output that updates
// the goldens fails here until the page shows it too.
func TestDocsMatchGoldens(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range transcripts(string(b)) {
			known[r] = true
		}
	}
	blocks := 0
	for _, part := range strings.Split(string(doc), "```console\n")[1:] {
		block, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatalf("an unclosed console block: %.80q", part)
		}
		blocks++
		for _, r := range transcripts(block) {
			if !known[r] {
				t.Errorf("docs/cli.md shows output no golden file has (update the page from cmd/clusto/testdata):\n%s", r)
			}
		}
	}
	if blocks < 30 {
		t.Errorf("docs/cli.md has %d console blocks; expected an example for every command", blocks)
	}
}
