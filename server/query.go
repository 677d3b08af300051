package server

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invfile"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/query"
)

// GET /query?q=EXPR[&limit=N][&cursor=C][&at=CHANGE][&explain=1]
func (s *Server) queryGet(w http.ResponseWriter, r *http.Request) error {
	q, _, err := queryValue(r, "q")
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 1, query.MaxLimit, query.DefaultLimit)
	if err != nil {
		return err
	}
	cursor, _, err := queryValue(r, "cursor")
	if err != nil {
		return err
	}
	at, err := s.atParam(r)
	if err != nil {
		return err
	}
	explain, err := boolParam(r, "explain")
	if err != nil {
		return err
	}
	view, _, err := queryValue(r, "view")
	if err != nil {
		return err
	}
	total, _, err := queryValue(r, "total")
	if err != nil {
		return err
	}
	return s.runQuery(w, r, entity.QueryRequest{Q: q, Limit: int(limit), Cursor: cursor, At: at, Explain: explain, View: view, Total: total})
}

// POST /query with the same fields in a JSON body, for long queries.
func (s *Server) queryPost(w http.ResponseWriter, r *http.Request) error {
	var req entity.QueryRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Limit < 0 || req.Limit > query.MaxLimit {
		return entity.Errorf(entity.KindInvalid, "limit %d must be from 1 to %d", req.Limit, query.MaxLimit)
	}
	if req.At != 0 {
		latest, err := s.store.LatestChange(r.Context())
		if err != nil {
			return err
		}
		if req.At < 0 || req.At > latest {
			return entity.Errorf(entity.KindInvalid, "at=%d must be a change that happened (1 to %d)", req.At, latest)
		}
	}
	return s.runQuery(w, r, req)
}

func (s *Server) runQuery(w http.ResponseWriter, r *http.Request, req entity.QueryRequest) error {
	switch req.View {
	case "", entity.ViewFull, entity.ViewSummary:
	default:
		return entity.Errorf(entity.KindInvalid, "view %q: expected %s (whole entities, the default) or %s (names, drivers, kinds and versions)", req.View, entity.ViewFull, entity.ViewSummary)
	}
	opts := query.Options{At: req.At, Limit: req.Limit, Cursor: req.Cursor}
	switch req.Total {
	case "", entity.TotalCapped:
		opts.TotalCap = totalCap
	case entity.TotalExact:
	default:
		return entity.Errorf(entity.KindInvalid, "total %q: expected %s (count up to %d, the default) or %s (count every match)", req.Total, entity.TotalCapped, totalCap, entity.TotalExact)
	}
	// With the store to ask, the compiler estimates how many hold an
	// attribute, which chooses the statement's form: an explanation shows
	// the one the query runs.
	opts.DB = s.store.Reader()
	if req.Explain {
		sql, args, err := query.Explain(req.Q, opts)
		if err != nil {
			return err
		}
		plan, err := query.Plan(r.Context(), s.store.Reader(), req.Q, opts)
		if err != nil {
			return err
		}
		return s.writeJSON(w, r, http.StatusOK, entity.Explanation{SQL: sql, Args: printableArgs(args), Plan: plan})
	}
	start := time.Now()
	q, err := query.Parse(req.Q)
	if err != nil {
		return err
	}
	compiled, err := query.Compile(q, opts)
	if err != nil {
		return err
	}
	compiledAt := time.Now()
	s.metrics.query.WithLabelValues("compile").Observe(compiledAt.Sub(start).Seconds())
	res, err := compiled.Exec(r.Context(), s.store.Reader())
	if err != nil {
		return err
	}
	s.metrics.query.WithLabelValues("execute").Observe(time.Since(compiledAt).Seconds())
	if req.View == entity.ViewSummary {
		return s.writeJSON(w, r, http.StatusOK, entity.SummaryResults{Results: res.Results, Total: res.Total, TotalAtLeast: res.TotalAtLeast, NextCursor: res.NextCursor})
	}
	names := make([]string, len(res.Results))
	for i, m := range res.Results {
		names[i] = m.Name
	}
	return s.writeResults(w, r, names, req.At, res.Total, res.TotalAtLeast, res.NextCursor)
}

// printableArgs shows blob parameters (IP addresses) as SQL hex literals.
func printableArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if b, ok := a.([]byte); ok {
			out[i] = "x'" + hex.EncodeToString(b) + "'"
			continue
		}
		out[i] = a
	}
	return out
}

// POST /allocate: entities matching a query, optionally each under a
// different ancestor of a driver, claimed and updated in one transaction;
// with dry_run, a dry run of it (dryRunAnswer).
func (s *Server) allocateQuery(w http.ResponseWriter, r *http.Request) error {
	if err := checkWriteHeaders(r); err != nil {
		return err
	}
	var req entity.AllocateRequest
	if err := decodeReplayable(r, &req); err != nil {
		return err
	}
	set, err := attrMap(req.Set)
	if err != nil {
		return err
	}
	areq := query.AllocateRequest{Query: req.Query, Count: req.Count, Distinct: req.Distinct, Set: set}
	if req.DryRun {
		// Chosen inside the transaction, from the state it would commit on.
		return s.dryRunAnswer(w, r, func(tx *store.Tx) (any, error) {
			names, err := query.Allocate(tx, areq)
			if err != nil {
				return nil, err
			}
			return entitiesOf(tx, names)
		})
	}
	// The candidates are found on the read pool, beside other readers;
	// the writer only checks that they still match and claims them (with
	// room for the writes grouped before this one to take the first).
	cands, err := query.Candidates(r.Context(), s.store.Reader(), areq, candidateSlack, s.resume)
	if err != nil {
		return err
	}
	return s.keyedWrite(w, r, func(tx *store.Tx) (int, any, error) {
		names, err := query.AllocateFrom(tx, areq, cands)
		if err != nil {
			return 0, nil, err
		}
		answer, err := entitiesOf(tx, names)
		if err != nil {
			return 0, nil, err
		}
		s.metrics.allocs.WithLabelValues("query").Inc()
		return http.StatusOK, answer, nil
	})
}

// totalCap is how far total=capped, the default, counts: past it the
// answer says total_at_least, so that a page of a query matching most of
// a large inventory does not pay for counting it all (docs/api.md).
const totalCap = 1000

// candidateSlack is how many candidates past its count an allocation
// reads before it takes the writer: as many as the writes one group
// commit holds, which may take the first ones before it.
const candidateSlack = 64

// GET /export[?q=EXPR]: the inventory, or what a query selects, as an
// inventory file. It is a heavy request: admitted through the queue, under
// the query deadline, and its file at most Options.MaxAnswerBytes.
func (s *Server) export(w http.ResponseWriter, r *http.Request) error {
	q, hasQ, err := queryValue(r, "q")
	if err != nil {
		return err
	}
	var names []string
	if hasQ {
		names = []string{}
		for cursor := ""; ; {
			// The pages' totals go unused: counted no further than one.
			res, err := query.Run(r.Context(), s.store.Reader(), q, query.Options{Limit: query.MaxLimit, Cursor: cursor, TotalCap: 1})
			if err != nil {
				return err
			}
			for _, m := range res.Results {
				names = append(names, m.Name)
			}
			if res.NextCursor == "" {
				break
			}
			cursor = res.NextCursor
		}
	} else if names, err = s.store.Names(r.Context()); err != nil {
		return err
	}
	// The file is written into a buffer that refuses to grow past the
	// answer's bound, so that an export too large stops there (422)
	// rather than after it is all in memory.
	data := &boundedBuffer{max: s.opts.MaxAnswerBytes}
	if err := invfile.Export(r.Context(), s.store, names, data); err != nil {
		if errors.Is(err, errOverBound) {
			return s.answerTooLarge("this export", "export less (?q=) or run clustod export on the server")
		}
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, entity.Export{Content: data.String(), Count: len(names)})
}

// errOverBound is a boundedBuffer's refusal to grow past its bound.
var errOverBound = errors.New("over the answer's bound")

// boundedBuffer is a bytes.Buffer that refuses writes past max bytes.
type boundedBuffer struct {
	bytes.Buffer
	max int64
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if int64(b.Len()+len(p)) > b.max {
		return 0, errOverBound
	}
	return b.Buffer.Write(p)
}
