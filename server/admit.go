package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/query"
)

// Heavy requests (queries, exports, plans, and the dry runs of batches,
// applies and allocations by query) can each take a core and tens of megabytes for a while; 192
// of them at once took a server from 110 MB to 1.8 GB and starved the
// read pool. They are admitted through a bounded queue: at most
// HeavyRunning run at once, at most HeavyQueue more wait (each at most
// HeavyWait), and one token may have at most HeavyPerToken running or
// waiting. Beyond that the answer is at once a 429 (the token's own
// bound) or a 503 (the server's), with Retry-After. Light requests
// (reading an entity, single writes, /healthz) never wait here.

// Defaults of the bounds on heavy requests and their answers.
const (
	DefaultHeavyQueue    = 64
	DefaultHeavyPerToken = 4
	DefaultHeavyWait     = 10 * time.Second
	DefaultQueryTimeout  = 10 * time.Second
	DefaultDryRunTimeout = 30 * time.Second
	DefaultMaxAnswer     = 64 << 20
)

// DefaultHeavyRunning is the default of Options.HeavyRunning: one heavy
// request per core but one, so that a core is left for everything else
// (/healthz, reads of one entity, single writes); at least one.
func DefaultHeavyRunning() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// Retry-After, in seconds, of the refusals: a token's own request ends
// soon; a full server needs a little longer.
const (
	retryTokenBusy  = 1
	retryServerBusy = 2
)

// cost says what bounds a route's requests.
type cost int

const (
	// light: no admission, no deadline.
	light cost = iota
	// heavyQuery: admitted, and bounded by Options.QueryTimeout.
	heavyQuery
	// heavyPlan: admitted, and bounded by Options.DryRunTimeout.
	heavyPlan
)

// The dry runs of POST /batch, /apply and /allocate are heavy too; they
// are admitted by the handler, which knows from the body whether the
// request is one (admitDryRun). The real writes are not: the single
// writer serialises them anyway, and a deadline would only make a large
// apply fail.

// admission is the bounded queue of heavy requests.
type admission struct {
	// slots holds one token per heavy request running.
	slots           chan struct{}
	queue, perToken int
	wait            time.Duration
	mu              sync.Mutex
	waiting         int
	// byToken counts each token's heavy requests running or waiting.
	byToken map[string]int
	// onResult counts each admission by result (metrics).
	onResult func(result string)
}

func newAdmission(running, queue, perToken int, wait time.Duration, onResult func(string)) *admission {
	return &admission{slots: make(chan struct{}, running), queue: queue, perToken: perToken, wait: wait,
		byToken: map[string]int{}, onResult: onResult}
}

// Running is how many heavy requests run now.
func (a *admission) Running() int { return len(a.slots) }

// Waiting is how many heavy requests wait for a turn.
func (a *admission) Waiting() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting
}

// Results of an admission, the label of clusto_heavy_requests_total.
const (
	admitted     = "admitted"
	refusedToken = "per_token"
	refusedFull  = "queue_full"
	refusedWait  = "queue_timeout"
)

// enter admits one heavy request of token, waiting for a turn if need be,
// and returns the function that ends it.
func (a *admission) enter(ctx context.Context, token string) (release func(), err error) {
	a.mu.Lock()
	if a.byToken[token] >= a.perToken {
		a.mu.Unlock()
		a.onResult(refusedToken)
		return nil, entity.Errorf(entity.KindTooManyRequests, "token %q already has %d heavy requests (queries, exports, plans, dry runs) running or waiting, the most one token may (clustod serve --heavy-per-token); send the next when one is done",
			token, a.perToken).WithCode(refusedToken).With("limit", a.perToken).With(entity.RetryAfter, retryTokenBusy)
	}
	select {
	case a.slots <- struct{}{}:
		a.byToken[token]++
		a.mu.Unlock()
		a.onResult(admitted)
		return a.leave(token), nil
	default:
	}
	if a.waiting >= a.queue {
		a.mu.Unlock()
		a.onResult(refusedFull)
		return nil, entity.Errorf(entity.KindUnavailable, "the server is busy: %d heavy requests are running and %d waiting, the most it queues (clustod serve --heavy-running, --heavy-queue); try again in a moment",
			cap(a.slots), a.queue).WithCode(refusedFull).With("limit", a.queue).With(entity.RetryAfter, retryServerBusy)
	}
	a.waiting++
	a.byToken[token]++
	a.mu.Unlock()
	timer := time.NewTimer(a.wait)
	defer timer.Stop()
	// Waiting senders on a channel are served in order, so the queue is
	// first come, first served.
	select {
	case a.slots <- struct{}{}:
		a.mu.Lock()
		a.waiting--
		a.mu.Unlock()
		a.onResult(admitted)
		return a.leave(token), nil
	case <-timer.C:
		a.giveUp(token)
		a.onResult(refusedWait)
		return nil, entity.Errorf(entity.KindUnavailable, "the server is busy: this request waited %s for one of the %d turns of heavy requests (clustod serve --heavy-wait, --heavy-running); try again in a moment",
			a.wait, cap(a.slots)).WithCode(refusedWait).With("limit", a.wait.String()).With(entity.RetryAfter, retryServerBusy)
	case <-ctx.Done():
		a.giveUp(token)
		return nil, entity.Internal("wait for a turn", ctx.Err())
	}
}

func (a *admission) giveUp(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.waiting--
	a.forget(token)
}

func (a *admission) forget(token string) {
	if a.byToken[token]--; a.byToken[token] <= 0 {
		delete(a.byToken, token)
	}
}

func (a *admission) leave(token string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			<-a.slots
			a.mu.Lock()
			a.forget(token)
			a.mu.Unlock()
		})
	}
}

// requestLimit is the deadline a heavy request runs under, kept in its
// context so that a failure it causes can be told apart and named.
type requestLimit struct {
	ctx, parent context.Context
	d           time.Duration
	flag, what  string
}

type limitKey struct{}

// limit runs the rest of r under a deadline of d, named by the clustod
// serve flag that sets it, and returns the request to use and the
// function that ends the deadline.
func limit(r *http.Request, d time.Duration, flag, what string) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), d)
	l := &requestLimit{ctx: ctx, parent: r.Context(), d: d, flag: flag, what: what}
	return r.WithContext(context.WithValue(ctx, limitKey{}, l)), cancel
}

// queryLimit and dryRunLimit are the deadlines of queries and exports,
// and of plans and dry runs.
func (s *Server) queryLimit(r *http.Request) (*http.Request, context.CancelFunc) {
	return limit(r, s.opts.QueryTimeout, reasonQueryTimeout, "the query")
}

func (s *Server) dryRunLimit(r *http.Request) (*http.Request, context.CancelFunc) {
	return limit(r, s.opts.DryRunTimeout, reasonDryRunTimeout, "the dry run")
}

// overLimit turns the failure caused by a request's own deadline (an
// interrupted statement, a canceled read: internal errors otherwise)
// into one that names the limit. Errors of a client-facing kind, such as
// a dry run that writes kept from finishing (unavailable), stay as they
// are, and so does a request whose client went away.
func overLimit(r *http.Request, err error) error {
	var syntax *query.SyntaxError
	if errors.As(err, &syntax) {
		return err
	}
	l, ok := r.Context().Value(limitKey{}).(*requestLimit)
	if !ok || !errors.Is(l.ctx.Err(), context.DeadlineExceeded) || l.parent.Err() != nil || entity.KindOf(err) != entity.KindInternal {
		return err
	}
	return entity.Errorf(entity.KindTooExpensive, "%s did not finish within %s, the limit (clustod serve --%s); narrow it (fewer entities, a smaller limit, a smaller file) or run it on the server",
		l.what, l.d, l.flag).WithCode(l.flag).With("limit", l.d.String())
}

// answerTooLarge is the error of an answer over Options.MaxAnswerBytes.
func (s *Server) answerTooLarge(what, hint string) error {
	return entity.Errorf(entity.KindTooExpensive, "the answer to %s would be larger than %d bytes, the limit (clustod serve --max-answer); %s",
		what, s.opts.MaxAnswerBytes, hint).WithCode(reasonMaxAnswer).With("limit", s.opts.MaxAnswerBytes)
}

// admit lets a heavy request of route rt in (or refuses it) and puts it
// under its deadline; done ends both.
func (s *Server) admit(rt route, r *http.Request) (_ *http.Request, done func(), err error) {
	release, err := s.heavy.enter(r.Context(), actorOf(r))
	if err != nil {
		return r, nil, err
	}
	cancel := context.CancelFunc(func() {})
	switch rt.Cost {
	case heavyQuery:
		r, cancel = s.queryLimit(r)
	case heavyPlan:
		r, cancel = s.dryRunLimit(r)
	}
	return r, func() { cancel(); release() }, nil
}

// admitDryRun admits a dry run of a write route and puts it under
// Options.DryRunTimeout; done ends both.
func (s *Server) admitDryRun(r *http.Request) (_ *http.Request, done func(), err error) {
	return s.admit(route{Cost: heavyPlan}, r)
}

// String describes the bounds, for the serving log line.
func (a *admission) String() string {
	return fmt.Sprintf("%d running, %d waiting (%s each), %d per token", cap(a.slots), a.queue, a.wait, a.perToken)
}
