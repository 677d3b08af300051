package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/clusto/clusto/entity"
)

// cacheUniverse is every name the cache tests' ops touch, renamed ones
// included, so that an entity deleted or renamed away is asked for too.
var cacheUniverse = append(append(append(append(append([]string{}, propRacks...), propDevices...), propPools...), propBlocks...),
	"nm", "r1x", "s1x", "sw1x", "p1x")

// cacheOp is a random write of the property test's (containment, units,
// blocks, allocations, pools, names, deletes) or one that changes what
// other entities show: a rename there and back, a cable made or removed.
func cacheOp(g *opGen) step {
	if g.n < 14 || g.r.IntN(3) > 0 {
		return g.next()
	}
	g.n++
	switch g.r.IntN(4) {
	case 0:
		from := g.pick("r1", "s1", "sw1", "p1")
		return step{"PATCH", api + "/entities/" + from, map[string]any{"name": from + "x"}, 0}
	case 1:
		from := g.pick("r1x", "s1x", "sw1x", "p1x")
		return step{"PATCH", api + "/entities/" + from, map[string]any{"name": from[:len(from)-1]}, 0}
	case 2:
		return step{"POST", api + "/links", map[string]any{"a": g.pick("s1", "s2", "s3", "s1x"), "b": g.pick("sw1", "sw1x")}, 0}
	default:
		return step{"DELETE", api + "/links", map[string]any{"a": g.pick("s1", "s2", "s3", "s1x"), "b": g.pick("sw1", "sw1x")}, 0}
	}
}

// fresh is what GET /entities/{name} must answer now: the entity read
// from the store and encoded, or 404.
func fresh(t *testing.T, e *env, name string) (int, []byte) {
	t.Helper()
	en, err := e.store.Get(context.Background(), name)
	if entity.IsKind(err, entity.KindNotFound) {
		return http.StatusNotFound, nil
	}
	if err != nil {
		t.Fatalf("store.Get(%s): %v", name, err)
	}
	body, err := encodeJSON(en)
	if err != nil {
		t.Fatal(err)
	}
	return http.StatusOK, body
}

// TestEntityCacheNeverServesAStaleAnswer: random op streams against a
// server whose entity cache is on. Before each write every entity is read
// (filling the cache); after each acknowledged write every entity is read
// again, twice (the second from the cache), and each answer must be the
// one read from the store with no cache, with the ETag of its bytes; a
// read with If-None-Match naming the answer from before the write is 304
// exactly when the bytes are unchanged. Writes cover the entity's own
// rows and what changes its neighbours' answers (renames, cables,
// containment, deletes).
func TestEntityCacheNeverServesAStaleAnswer(t *testing.T) {
	steps := 200
	if testing.Short() {
		steps = 30
	}
	for _, seed := range []uint64{5, 6, 7} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			e := newEnv(t)
			if e.srv.cache == nil {
				t.Fatal("the server has no entity cache")
			}
			g := &opGen{r: rand.New(rand.NewPCG(seed, 29))}
			hits, pageHits, notModified, modified := 0, 0, 0, 0
			for i := 0; i < steps; i++ {
				before := map[string]*resp{}
				for _, n := range cacheUniverse {
					before[n] = e.do("GET", api+"/entities/"+n, nil)
				}
				op := cacheOp(g)
				r := e.do(op.method, op.path, op.body)
				if r.Status >= 500 {
					t.Fatalf("step %d: %s %s %v: %d %s", i, op.method, op.path, op.body, r.Status, r.Body)
				}
				for _, n := range cacheUniverse {
					wantStatus, want := fresh(t, e, n)
					for pass := range 2 {
						if _, cached := e.srv.cache.get(n); cached && pass == 1 {
							hits++
						}
						got := e.do("GET", api+"/entities/"+n, nil)
						if got.Status != wantStatus || (wantStatus == http.StatusOK && !bytes.Equal(got.Body, want)) {
							t.Fatalf("step %d (%s %s %v, status %d), read %d of %s: got %d %s\nwant %d %s",
								i, op.method, op.path, op.body, r.Status, pass+1, n, got.Status, got.Body, wantStatus, want)
						}
						if wantStatus == http.StatusOK && got.Header.Get("ETag") != entityTag(e.get(n).Version, want) {
							t.Fatalf("step %d: %s answered ETag %s, not the one of its bytes", i, n, got.Header.Get("ETag"))
						}
					}
					// A client holding the answer from before the write is
					// told 304 exactly when the bytes did not change.
					if old := before[n]; old.Status == http.StatusOK {
						cond := e.do("GET", api+"/entities/"+n, nil, "If-None-Match", old.Header.Get("ETag"))
						unchanged := wantStatus == http.StatusOK && bytes.Equal(old.Body, want)
						if unchanged != (cond.Status == http.StatusNotModified) {
							t.Fatalf("step %d (%s %s %v): %s with If-None-Match %s: %d %s; the bytes unchanged: %v",
								i, op.method, op.path, op.body, n, old.Header.Get("ETag"), cond.Status, cond.Body, unchanged)
						}
						if unchanged {
							notModified++
						} else {
							modified++
						}
					}
				}
				// A query page is assembled from the same cache: each of its
				// entities is the store's answer too.
				cachedBefore := map[string]bool{}
				for _, n := range cacheUniverse {
					_, cachedBefore[n] = e.srv.cache.get(n)
				}
				var page struct{ Results []json.RawMessage }
				pr := e.do("GET", api+"/query?q=*&limit=1000", nil).want(t, http.StatusOK)
				if err := json.Unmarshal(pr.Body, &page); err != nil {
					t.Fatal(err)
				}
				for _, raw := range page.Results {
					var id struct{ Name string }
					if err := json.Unmarshal(raw, &id); err != nil {
						t.Fatal(err)
					}
					if cachedBefore[id.Name] {
						pageHits++ // this one came from the cache
					}
					_, want := fresh(t, e, id.Name)
					if !bytes.Equal(append(raw, '\n'), want) {
						t.Fatalf("step %d (%s %s %v): %s in a query page: %s\nwant %s", i, op.method, op.path, op.body, id.Name, raw, want)
					}
				}
			}
			if hits == 0 {
				t.Fatal("no read was served from the cache: this test proves nothing")
			}
			if notModified == 0 || modified == 0 {
				t.Fatalf("conditional reads: %d answered 304 and %d answered anew: both must happen for this test to prove anything", notModified, modified)
			}
			if pageHits == 0 {
				t.Fatal("no entity of a query page came from the cache: this test proves nothing")
			}
		})
	}
}

// TestEntityCacheUnderConcurrentReads: readers hammer the entities while
// a writer edits, renames and re-cables them; after each acknowledged
// write the writer's own read of every entity it changed is the store's
// answer (a reader's put from before the write must not survive it).
func TestEntityCacheUnderConcurrentReads(t *testing.T) {
	writes := 150
	if testing.Short() {
		writes = 24
	}
	e := newEnv(t)
	e.mk("r1", "rack", "s1", "server", "sw1", "switch")
	e.do("POST", api+"/entities/r1/children", map[string]any{"child": "s1"}).want(t, http.StatusCreated)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, n := range []string{"r1", "s1", "sw1", "s9"} {
					if r, err := http.Get(e.ts.URL + api + "/entities/" + n); err == nil {
						r.Body.Close()
						reads.Add(1)
					}
				}
			}
		}()
	}
	for i := range writes {
		var op step
		switch i % 4 {
		case 0:
			op = step{"POST", api + "/entities/s1/attrs", map[string]any{"key": "note", "value": fmt.Sprint("n", i)}, 0}
		case 1:
			op = step{"PATCH", api + "/entities/s1", map[string]any{"name": "s9"}, 0}
		case 2:
			op = step{"PATCH", api + "/entities/s9", map[string]any{"name": "s1"}, 0}
		default:
			if i%8 == 3 {
				op = step{"POST", api + "/links", map[string]any{"a": "s1", "b": "sw1"}, 0}
			} else {
				op = step{"DELETE", api + "/links", map[string]any{"a": "s1", "b": "sw1"}, 0}
			}
		}
		if r := e.do(op.method, op.path, op.body); r.Status >= 300 {
			t.Fatalf("write %d: %s %s: %d %s", i, op.method, op.path, r.Status, r.Body)
		}
		for _, n := range []string{"r1", "s1", "sw1", "s9"} {
			wantStatus, want := fresh(t, e, n)
			got := e.do("GET", api+"/entities/"+n, nil)
			if got.Status != wantStatus || (wantStatus == http.StatusOK && !bytes.Equal(got.Body, want)) {
				t.Fatalf("after write %d (%s %s), %s: got %d %s\nwant %d %s", i, op.method, op.path, n, got.Status, got.Body, wantStatus, want)
			}
		}
	}
	close(stop)
	readers.Wait()
	if reads.Load() == 0 {
		t.Fatal("the readers read nothing")
	}
}
