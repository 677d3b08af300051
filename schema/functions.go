package schema

import (
	"database/sql/driver"
	"fmt"
	"net/netip"
	"regexp"
	"sync"

	"modernc.org/sqlite"
)

// The regex cache keeps compiled patterns: a query evaluates its regex
// once per candidate row, and compiling each time would dominate. It is
// bounded, since patterns come from users: past maxCachedRegexes entries,
// half of them (arbitrary ones) are dropped.
const maxCachedRegexes = 256

var (
	regexMu    sync.RWMutex
	regexCache = map[string]*regexp.Regexp{}
)

func compiledRegex(pattern string) (*regexp.Regexp, error) {
	regexMu.RLock()
	re, ok := regexCache[pattern]
	regexMu.RUnlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	regexMu.Lock()
	if len(regexCache) >= maxCachedRegexes {
		for k := range regexCache {
			delete(regexCache, k)
			if len(regexCache) <= maxCachedRegexes/2 {
				break
			}
		}
	}
	regexCache[pattern] = re
	regexMu.Unlock()
	return re, nil
}

func init() {
	// regexp(pattern, text) backs SQL's "text REGEXP pattern" with Go's RE2
	// engine, so no pattern can backtrack catastrophically. The query
	// compiler validates patterns before binding them; a NULL text never matches.
	err := sqlite.RegisterDeterministicScalarFunction("regexp", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		pattern, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("regexp: pattern must be text")
		}
		var text string
		switch v := args[1].(type) {
		case nil:
			return int64(0), nil
		case string:
			text = v
		case []byte:
			text = string(v)
		case int64:
			text = fmt.Sprint(v)
		case float64:
			text = fmt.Sprint(v)
		default:
			return int64(0), nil
		}
		re, err := compiledRegex(pattern)
		if err != nil {
			return nil, fmt.Errorf("regexp: %w", err)
		}
		if re.MatchString(text) {
			return int64(1), nil
		}
		return int64(0), nil
	})
	if err != nil {
		panic(fmt.Sprintf("register regexp function: %v", err))
	}
}

func init() {
	// ip_text(address) spells a stored 16-byte address (IPv4 mapped, as
	// every address column holds it) as text, for the messages of clustod
	// check. Anything else gives NULL.
	err := sqlite.RegisterDeterministicScalarFunction("ip_text", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		b, ok := args[0].([]byte)
		if !ok || len(b) != 16 {
			return nil, nil
		}
		return netip.AddrFrom16([16]byte(b)).Unmap().String(), nil
	})
	if err != nil {
		panic(fmt.Sprintf("register ip_text function: %v", err))
	}
}
