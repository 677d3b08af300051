package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/clusto/clusto/entity"
)

// keyed is an allocation POST: it carries an Idempotency-Key (the caller's,
// or one made for this call), which makes it safe to retry.
func keyed(path, key string, body any) request {
	if key == "" {
		key = NewIdempotencyKey()
	}
	return request{method: http.MethodPost, path: path, body: body, header: http.Header{"Idempotency-Key": {key}}, retry: true}
}

// AllocateIP hands out addresses of a block to an entity: the lowest free
// ones, or the Address asked for. A full block is a conflict (Code) with
// Reason "exhausted".
func (c *Client) AllocateIP(ctx context.Context, block string, r IPRequest) ([]IPAllocation, error) {
	var out entity.Allocations
	if _, err := c.do(ctx, keyed("/ipblocks/"+pathEscape(block)+"/allocate", r.IdempotencyKey, r), &out); err != nil {
		return nil, err
	}
	return out.Allocations, nil
}

// ReleaseIP gives an address back to its block.
func (c *Client) ReleaseIP(ctx context.Context, block, address string) ([]IPAllocation, error) {
	var out entity.Allocations
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/ipblocks/" + pathEscape(block) + "/allocations/" + pathEscape(address)}, &out); err != nil {
		return nil, err
	}
	return out.Allocations, nil
}

// BlockPage selects the allocations listed by IPBlock: at most Limit
// (0: the server's default), those after address After.
type BlockPage struct {
	After string
	Limit int
}

// IPBlock reads a block's size, use and allocations.
func (c *Client) IPBlock(ctx context.Context, block string, p BlockPage) (*IPBlock, error) {
	q := url.Values{}
	if p.After != "" {
		q.Set("after", p.After)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var out IPBlock
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/ipblocks/" + pathEscape(block), query: q, retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AllocateRackUnits places an entity in a rack: at Position, or in the
// lowest free range of units that fits. It answers the entity placed.
func (c *Client) AllocateRackUnits(ctx context.Context, rack string, r RackRequest) (*Entity, error) {
	es, resp, err := c.entities(ctx, keyed("/racks/"+pathEscape(rack)+"/allocate", r.IdempotencyKey, r))
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, &Error{Status: resp.status, Code: CodeInternal, Message: "the server answered a rack allocation without the entity placed"}
	}
	return &es[0], nil
}

// Elevation reads a rack unit by unit, top unit first.
func (c *Client) Elevation(ctx context.Context, rack string) (*Elevation, error) {
	var out Elevation
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/racks/" + pathEscape(rack) + "/elevation", retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AllocateNames creates Count entities named by a name manager.
func (c *Client) AllocateNames(ctx context.Context, manager string, r NameRequest) ([]Entity, error) {
	es, _, err := c.entities(ctx, keyed("/names/"+pathEscape(manager)+"/allocate", r.IdempotencyKey, r))
	return es, err
}

// entities sends a write that answers entities (an entity.EntitiesAnswer)
// and returns them with the change it recorded; none is an empty list.
func (c *Client) entities(ctx context.Context, req request) ([]Entity, *response, error) {
	var out entity.EntitiesAnswer
	resp, err := c.do(ctx, req, &out)
	if err != nil {
		return nil, nil, err
	}
	es := make([]Entity, len(out.Results))
	for i, e := range out.Results {
		es[i] = Entity{Entity: e, Change: resp.change()}
	}
	return es, resp, nil
}

// Allocate claims Count entities matching a query and sets attributes on
// them, as one change; too few matches is a conflict (Code) with Reason
// "insufficient" (Details["available"] says how many there were).
func (c *Client) Allocate(ctx context.Context, r AllocateRequest) ([]Entity, error) {
	es, _, err := c.entities(ctx, keyed("/allocate", r.IdempotencyKey, r))
	return es, err
}

// Batch applies ops in one transaction, all or none; with dryRun it
// answers what they would do and changes nothing.
func (c *Client) Batch(ctx context.Context, ops []Op, dryRun bool) (*BatchResult, error) {
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode the ops: %w", err)
	}
	body := entity.BatchRequest{Ops: raw, DryRun: dryRun}
	var out BatchResult
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/batch", body: body, retry: dryRun}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Plan says what applying an inventory file would change. It changes
// nothing, so it is retried like a read.
func (c *Client) Plan(ctx context.Context, f File) (*Plan, error) {
	f.DryRun = false
	var out Applied
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/plan", body: f, retry: true}, &out); err != nil {
		return nil, err
	}
	return &out.Plan, nil
}

// Apply makes the inventory match a file, as one transaction.
func (c *Client) Apply(ctx context.Context, f File) (*Applied, error) {
	var out Applied
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/apply", body: f, retry: f.DryRun}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Export writes the entities matching a query ("" for all) as an inventory
// file (YAML).
func (c *Client) Export(ctx context.Context, query string) (*Export, error) {
	q := url.Values{}
	if query != "" {
		q.Set("q", query)
	}
	var out Export
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/export", query: q, retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
