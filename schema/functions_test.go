package schema

import (
	"fmt"
	"testing"
)

func TestRegexCacheBounded(t *testing.T) {
	for i := 0; i < 3*maxCachedRegexes; i++ {
		re, err := compiledRegex(fmt.Sprintf("^x%d$", i))
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(fmt.Sprintf("x%d", i)) {
			t.Fatalf("pattern %d does not match", i)
		}
		regexMu.RLock()
		n := len(regexCache)
		regexMu.RUnlock()
		if n > maxCachedRegexes {
			t.Fatalf("cache holds %d patterns, more than %d", n, maxCachedRegexes)
		}
	}
	if _, err := compiledRegex("("); err == nil {
		t.Fatal("a bad pattern compiled")
	}
}
