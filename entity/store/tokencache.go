package store

import (
	"sync"
	"sync/atomic"

	"github.com/clusto/clusto/entity"
)

// tokenCache keeps the tokens verified since the database last changed,
// by hash, so that a request with a token it has seen is not a read of
// the tokens table: that read was close to half of the handler's CPU for
// an entity answered from the entity cache.
//
// A revoked token must fail at once, also when another process revoked
// it (clustod token revoke on the server's host writes the file). So the
// cache is trusted only while nothing has been committed since it was
// filled, and "has anything been committed" must cost much less than the
// read it saves: a statement (PRAGMA data_version) costs as much as the
// lookup. The answer is in the WAL index, the -shm file every connection
// to a WAL database maps: its header (https://sqlite.org/walformat.html,
// "The WAL-Index Header") holds iChange, a counter every commit moves, and
// mxFrame and the salts, which every commit or WAL restart moves too. The
// cache reads those bytes from its own read-only map of the file (a few
// nanoseconds) before each lookup and forgets every entry when they moved.
// A commit is in that header before the committer's write lock is
// released, so before `clustod token revoke` returns; the next request's
// check sees it. A commit between the check and a read of the table is
// seen by the next check, so nothing verified before a revocation is
// served after it.
//
// When the map cannot be made (no -shm file, not a WAL index this build
// knows, another system), there is no cache: every check reads the table.
type tokenCache struct {
	mu    sync.Mutex
	probe *walProbe // nil: no cache; guarded by mu, as close unmaps it
	mark  walMark
	gen   uint64 // moves whenever the entries are forgotten
	// byHash holds verified tokens; hasAny whether tokens exist (0: not
	// known, 1: none, 2: some).
	byHash map[string]entity.Token
	hasAny int
	hits   atomic.Int64
}

// maxCachedTokens bounds the cache; past it, it starts again.
const maxCachedTokens = 4096

// check forgets the entries if anything was committed since they were
// read, and returns the generation to tag new entries with; ok is false
// when there is no cache.
func (c *tokenCache) check() (gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probe == nil {
		return 0, false
	}
	m, ok := c.probe.mark()
	if !ok {
		c.forgetLocked()
		return 0, false
	}
	if m != c.mark {
		c.mark = m
		c.forgetLocked()
	}
	return c.gen, true
}

func (c *tokenCache) forgetLocked() {
	c.gen++
	c.byHash = nil
	c.hasAny = 0
}

// token returns the token of hash if it was verified in generation gen.
func (c *tokenCache) token(gen uint64, hash []byte) (entity.Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.byHash[string(hash)]
	if !ok || gen != c.gen {
		return entity.Token{}, false
	}
	c.hits.Add(1)
	return t, true
}

// putToken remembers a token verified in generation gen, unless the
// database changed since.
func (c *tokenCache) putToken(gen uint64, hash []byte, t entity.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.byHash == nil || len(c.byHash) >= maxCachedTokens {
		c.byHash = map[string]entity.Token{}
	}
	c.byHash[string(hash)] = t
}

// hasTokens returns whether tokens exist, if known in generation gen.
func (c *tokenCache) hasTokens(gen uint64) (has, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.hasAny == 0 {
		return false, false
	}
	c.hits.Add(1)
	return c.hasAny == 2, true
}

// putHasTokens remembers whether tokens exist, read in generation gen.
func (c *tokenCache) putHasTokens(gen uint64, has bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.hasAny = 1
	if has {
		c.hasAny = 2
	}
}

// close unmaps the WAL index; the cache is off from then on.
func (c *tokenCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probe.close()
	c.probe = nil
	c.forgetLocked()
}

// TokenCacheHits is how many token checks were answered without reading
// the tokens table (for metrics).
func (s *Store) TokenCacheHits() int64 { return s.tokens.hits.Load() }
