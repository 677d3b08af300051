package server

import (
	"net/http"
	"strconv"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invfile"
	"github.com/clusto/clusto/entity/store"
)

// POST /batch: ops applied in one transaction, or none of them; with
// dry_run, a dry run of them (dryRunAnswer).
func (s *Server) batch(w http.ResponseWriter, r *http.Request) error {
	if err := checkWriteHeaders(r); err != nil {
		return err
	}
	var req entity.BatchRequest
	if err := decodeReplayable(r, &req); err != nil {
		return err
	}
	if len(req.Ops) == 0 {
		return entity.Errorf(entity.KindInvalid, "ops is missing: give a list of ops")
	}
	ops, err := entity.DecodeOps(req.Ops)
	if err != nil {
		return err
	}
	if len(ops) > entity.MaxBatchOps {
		return entity.Errorf(entity.KindInvalid, "the batch has %d ops; the limit is %d (split it, or apply an inventory file)", len(ops), entity.MaxBatchOps)
	}
	if req.DryRun {
		return s.dryRunAnswer(w, r, func(tx *store.Tx) (any, error) {
			res, err := tx.ApplyOps(ops)
			return entity.BatchAnswer{Results: res, DryRun: true}, err
		})
	}
	return s.keyedWrite(w, r, func(tx *store.Tx) (int, any, error) {
		res, err := tx.ApplyOps(ops)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, entity.BatchAnswer{Results: res}, nil
	})
}

// dryRunAnswer answers what fn computes in a dry run (Store.DryRun: it
// never makes a real write wait, and stores nothing) under
// Options.DryRunTimeout. A dry run is not remembered under an
// Idempotency-Key, nor answered from one: there is nothing to replay.
func (s *Server) dryRunAnswer(w http.ResponseWriter, r *http.Request, fn func(tx *store.Tx) (any, error)) error {
	r, done, err := s.admitDryRun(r)
	if err != nil {
		return err
	}
	defer done()
	var answer any
	err = s.store.DryRun(r.Context(), actorOf(r), func(tx *store.Tx) error {
		var err error
		answer, err = fn(tx)
		return err
	})
	if err != nil {
		return overLimit(r, err)
	}
	return s.writeJSON(w, r, http.StatusOK, answer)
}

// planOf is a plan as answers show it (no steps stay null).
func planOf(p *invfile.Plan) entity.Plan {
	var steps []entity.PlanStep
	if p.Steps != nil {
		steps = make([]entity.PlanStep, len(p.Steps))
	}
	for i, st := range p.Steps {
		steps[i] = entity.PlanStep{Action: st.Action, Entity: st.Entity, Summary: st.Summary, Op: st.Op, Source: st.Source}
	}
	return entity.Plan{Steps: steps, Create: p.Create, Change: p.Change, Delete: p.Delete}
}

func (s *Server) readFileRequest(r *http.Request, applying bool) (*entity.FileRequest, *invfile.Plan, error) {
	var req entity.FileRequest
	if err := decode(r, &req); err != nil {
		return nil, nil, err
	}
	if !applying && req.DryRun {
		return nil, nil, entity.Errorf(entity.KindInvalid, "dry_run is for apply; a plan never changes anything")
	}
	if req.Name == "" {
		req.Name = "inventory"
	}
	doc, err := invfile.ParseWith(req.Name, []byte(req.Content), invfile.ParseOptions{MaxNames: MaxFileNames})
	if err != nil {
		return nil, nil, err
	}
	plan, err := invfile.MakePlan(r.Context(), s.store, doc, invfile.Options{Prune: req.Prune})
	if err != nil {
		return nil, nil, err
	}
	return &req, plan, nil
}

// MaxFileNames bounds what an inventory file sent to /plan or /apply may
// expand to (names of entities and list entries, after ranges): a few
// bytes of s[1-100000] must not make the server build a hundred thousand
// entities in memory. clustod import, run by the operator, has no bound.
const MaxFileNames = 100000

// POST /plan: what applying a file would change. The plan is checked by a
// dry run, so that a file that cannot apply fails here, at its line.
func (s *Server) plan(w http.ResponseWriter, r *http.Request) error {
	_, plan, err := s.readFileRequest(r, false)
	if err != nil {
		return err
	}
	// The check is a dry run on the single writer, which real writes
	// preempt (Store.DryRun); still, a caller who may not write gets to
	// check no more steps than a batch holds.
	if role := infoOf(r).role; !role.Allows(entity.RoleWrite) && len(plan.Steps) > entity.MaxBatchOps {
		return entity.Errorf(entity.KindInvalid, "the plan has %d steps; a token with the %s role may check plans of at most %d (a write token has no such limit; or split the file)",
			len(plan.Steps), role, entity.MaxBatchOps).With("steps", len(plan.Steps)).With("limit", entity.MaxBatchOps)
	}
	if err := plan.Check(r.Context(), s.store); err != nil {
		return err
	}
	return s.writeJSON(w, r, http.StatusOK, entity.PlanAnswer{Plan: planOf(plan)})
}

// POST /apply: apply a file's plan as one batch.
func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	if err := noIfMatch(r); err != nil {
		return err
	}
	req, plan, err := s.readFileRequest(r, true)
	if err != nil {
		return err
	}
	if req.DryRun {
		var done func()
		if r, done, err = s.admitDryRun(r); err != nil {
			return err
		}
		defer done()
	}
	res, err := plan.Apply(r.Context(), s.store, actorOf(r), store.BatchOptions{DryRun: req.DryRun})
	if err != nil {
		return overLimit(r, err)
	}
	if res == nil {
		res = []entity.OpResult{}
	}
	if !req.DryRun && len(res) > 0 {
		last := res[len(res)-1].Changes
		if len(last) > 0 {
			w.Header().Set("X-Clusto-Change", strconv.FormatInt(last[len(last)-1].Number, 10))
		}
	}
	return s.writeJSON(w, r, http.StatusOK, entity.PlanAnswer{Plan: planOf(plan), Results: res, DryRun: req.DryRun})
}
