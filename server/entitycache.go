package server

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// DefaultEntityCache is how many encoded entities the server keeps for
// GET /entities/{name} unless Options.EntityCache says otherwise.
const DefaultEntityCache = 8192

// entityCache holds the encoded answers of GET /entities/{name} for the
// current state (not as of a past change, not merged), least recently
// used first out. Reading and encoding an entity was most of the cost of
// that request; a cached answer costs a map lookup.
//
// It is never stale after an acknowledged write: the store tells it, after
// each commit and before the write is answered, which entities' answers
// the commit changed (store.OnCommit), and it drops them. A read that
// began before such a commit could still put what it read afterwards; the
// generation, which every invalidation moves, makes put refuse anything
// read before the latest invalidation.
type entityCache struct {
	mu     sync.Mutex
	max    int
	gen    uint64
	lru    *list.List // of *cachedAnswer, most recently used first
	byName map[string]*list.Element
	byID   map[int64]*list.Element
	// hits and misses count the lookups (for metrics).
	hits, misses atomic.Int64
}

// cachedAnswer is one entity's encoded answer.
type cachedAnswer struct {
	name    string
	id      int64
	version int64
	body    []byte // never modified once cached

	tagOnce sync.Once
	tag     string
}

// etag is the answer's ETag, computed on first use: query pages, which
// send no ETag, do not pay for digests.
func (a *cachedAnswer) etag() string {
	a.tagOnce.Do(func() { a.tag = entityTag(a.version, a.body) })
	return a.tag
}

func newEntityCache(max int) *entityCache {
	return &entityCache{max: max, lru: list.New(), byName: map[string]*list.Element{}, byID: map[int64]*list.Element{}}
}

// get returns the cached answer for name.
func (c *entityCache) get(name string) (*cachedAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byName[name]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	c.lru.MoveToFront(el)
	return el.Value.(*cachedAnswer), true
}

// generation is taken before a read whose answer may be put.
func (c *entityCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches a, read after generation gen was taken, unless an
// invalidation came since (a may then be from before a commit).
func (c *entityCache) put(gen uint64, a *cachedAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.removeLocked(a.name, a.id)
	c.byName[a.name] = c.lru.PushFront(a)
	c.byID[a.id] = c.byName[a.name]
	for c.lru.Len() > c.max {
		old := c.lru.Back().Value.(*cachedAnswer)
		c.removeLocked(old.name, old.id)
	}
}

// invalidate drops the answers of the entities ids (every answer when ids
// is nil) and moves the generation.
func (c *entityCache) invalidate(ids []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if ids == nil {
		c.lru.Init()
		clear(c.byName)
		clear(c.byID)
		return
	}
	for _, id := range ids {
		if el, ok := c.byID[id]; ok {
			a := el.Value.(*cachedAnswer)
			c.removeLocked(a.name, a.id)
		}
	}
}

// removeLocked drops the entries of name and of id, which may be two
// different entries (an entity renamed to a name another had).
func (c *entityCache) removeLocked(name string, id int64) {
	if el, ok := c.byName[name]; ok {
		a := el.Value.(*cachedAnswer)
		c.lru.Remove(el)
		delete(c.byName, name)
		delete(c.byID, a.id)
	}
	if el, ok := c.byID[id]; ok {
		a := el.Value.(*cachedAnswer)
		c.lru.Remove(el)
		delete(c.byID, id)
		delete(c.byName, a.name)
	}
}
