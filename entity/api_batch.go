package entity

import "encoding/json"

// The request and answer types of batches and inventory files (see
// api.go).

// BatchRequest is the body of POST /batch. Ops is the list of ops as sent
// (DecodeOps reads it, so that a bad op is told as the op it is); DryRun
// answers what they would do and changes nothing.
type BatchRequest struct {
	Ops    json.RawMessage `json:"ops"`
	DryRun bool            `json:"dry_run"`
}

// BatchAnswer is the answer of POST /batch: what each op did.
type BatchAnswer struct {
	Results OpResults `json:"results"`
	DryRun  bool      `json:"dry_run"`
}

// FileRequest is the body of POST /plan and POST /apply: an inventory
// file (YAML or JSON; docs/inventory-files.md).
type FileRequest struct {
	// Name is the file's name, shown in error positions
	// ("demo.yaml:12:3"); "inventory" when empty.
	Name    string `json:"file"`
	Content string `json:"content"`
	// Prune deletes the entities the file does not mention.
	Prune bool `json:"prune,omitempty"`
	// DryRun, for apply only, answers what applying would do and changes
	// nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// Plan is what applying an inventory file would change.
type Plan struct {
	Steps  []PlanStep `json:"steps"`
	Create int        `json:"create"`
	Change int        `json:"change"`
	Delete int        `json:"delete"`
}

// PlanStep is one step of a plan: an op with a readable summary and where
// in the file it comes from.
type PlanStep struct {
	// Action is create, change or delete.
	Action  string `json:"action"`
	Entity  string `json:"entity"`
	Summary string `json:"summary"`
	Op      *Op    `json:"op"`
	// Source is the step's place in the file ("site.yaml:12:3").
	Source string `json:"source,omitempty"`
}

// UnmarshalJSON reads the step's op with its attributes as answers write
// them (see shownAttr), not as a request gives them.
func (s *PlanStep) UnmarshalJSON(b []byte) error {
	type plain PlanStep
	aux := struct {
		*plain
		Op *shownOp `json:"op"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	s.Op = (*Op)(aux.Op)
	return nil
}

// shownOp is an Op read back from an answer, its attributes read by
// shownAttr.
type shownOp Op

func (o *shownOp) UnmarshalJSON(b []byte) error {
	type plain Op
	aux := struct {
		*plain
		Attrs []shownAttr `json:"attrs,omitempty"`
	}{plain: (*plain)(o)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	o.Attrs = shownAttrs(aux.Attrs)
	return nil
}

// PlanAnswer is the answer of POST /plan (the plan) and POST /apply (the
// plan and what each of its ops did).
type PlanAnswer struct {
	Plan    Plan      `json:"plan"`
	Results OpResults `json:"results,omitempty"`
	DryRun  bool      `json:"dry_run,omitempty"`
}

// OpResults are the results of a batch's ops, in order. Read back from an
// answer, each Result (what an allocation handed out, of a type that
// depends on the op) is the json.RawMessage it is, rather than maps and
// float64s.
type OpResults []OpResult

// UnmarshalJSON reads the results, their Result as a json.RawMessage.
func (rs *OpResults) UnmarshalJSON(b []byte) error {
	type plain OpResult
	var aux []struct {
		plain
		Result json.RawMessage `json:"result,omitempty"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if aux == nil {
		*rs = nil
		return nil
	}
	out := make(OpResults, len(aux))
	for i, r := range aux {
		out[i] = OpResult(r.plain)
		if r.Result != nil {
			out[i].Result = r.Result
		}
	}
	*rs = out
	return nil
}
