package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/clusto/clusto/entity"
)

// GetOptions select how an entity is read.
type GetOptions struct {
	// At reads as of a change (0: now).
	At int64
	// Merged adds the attributes the entity inherits from its containers
	// and groups, each marked with From.
	Merged bool
}

func atQuery(q url.Values, at int64) url.Values {
	if at > 0 {
		if q == nil {
			q = url.Values{}
		}
		q.Set("at", strconv.FormatInt(at, 10))
	}
	return q
}

// Entity reads one entity by name (opts may be nil).
func (c *Client) Entity(ctx context.Context, name string, opts *GetOptions) (*Entity, error) {
	q := url.Values{}
	if opts != nil {
		if opts.Merged {
			q.Set("merged", "true")
		}
		q = atQuery(q, opts.At)
	}
	var e Entity
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/entities/" + pathEscape(name), query: q, retry: true}, &e)
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Create makes an entity with its first attributes, as one change.
func (c *Client) Create(ctx context.Context, ne NewEntity) (*Entity, error) {
	return c.entityWrite(ctx, request{method: http.MethodPost, path: "/entities", body: ne})
}

// Rename renames an entity; references to it follow. ifMatch, when not 0,
// is the version the entity must still be at.
func (c *Client) Rename(ctx context.Context, name, newName string, ifMatch int64) (*Entity, error) {
	return c.entityWrite(ctx, request{method: http.MethodPatch, path: "/entities/" + pathEscape(name),
		body: entity.RenameRequest{Name: newName}, header: ifMatchHeader(ifMatch)})
}

// Delete deletes an entity. Without cascade, one that still holds children,
// members, links or allocations is a conflict; with it they are detached
// in the same change.
func (c *Client) Delete(ctx context.Context, name string, cascade bool, ifMatch int64) (*Deleted, error) {
	var q url.Values
	if cascade {
		q = url.Values{"cascade": {"true"}}
	}
	var d Deleted
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/entities/" + pathEscape(name), query: q, header: ifMatchHeader(ifMatch)}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

func (c *Client) entityWrite(ctx context.Context, req request) (*Entity, error) {
	var e Entity
	resp, err := c.do(ctx, req, &e)
	if err != nil {
		return nil, err
	}
	e.Change = resp.change()
	return &e, nil
}

// AttrQuery narrows the attributes read: a key, a key and subkey, as of a
// change.
type AttrQuery struct {
	Key    string
	Subkey string
	At     int64
}

// Attrs reads an entity's attributes (q may be nil for all of them).
func (c *Client) Attrs(ctx context.Context, name string, q *AttrQuery) (*Attrs, error) {
	vals := url.Values{}
	if q != nil {
		if q.Key != "" {
			vals.Set("key", q.Key)
		}
		if q.Subkey != "" {
			vals.Set("subkey", q.Subkey)
		}
		vals = atQuery(vals, q.At)
	}
	var a Attrs
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/entities/" + pathEscape(name) + "/attrs", query: vals, retry: true}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func (c *Client) attrsWrite(ctx context.Context, req request) (*Attrs, error) {
	var a Attrs
	resp, err := c.do(ctx, req, &a)
	if err != nil {
		return nil, err
	}
	a.Change = resp.change()
	return &a, nil
}

// AddAttr adds one value; adding a value the entity already has is a
// conflict.
func (c *Client) AddAttr(ctx context.Context, name string, a AttrInput, ifMatch int64) (*Attrs, error) {
	return c.attrsWrite(ctx, request{method: http.MethodPost, path: "/entities/" + pathEscape(name) + "/attrs", body: a, header: ifMatchHeader(ifMatch)})
}

// SetAttrRequest replaces every value of a key (narrowed by Subkey and
// Number, which the new values get) with Values.
type SetAttrRequest struct {
	Key     string
	Subkey  string
	Number  *int64
	Values  []any
	Type    string
	IfMatch int64
}

// SetAttr replaces the values of a key, as one change.
func (c *Client) SetAttr(ctx context.Context, name string, r SetAttrRequest) (*Attrs, error) {
	if r.Key == "" {
		return nil, errors.New("SetAttr: the key is required")
	}
	// An entity.SetAttrRequest, with Go values.
	body := struct {
		Values []any   `json:"values"`
		Subkey *string `json:"subkey,omitempty"`
		Number *int64  `json:"number,omitempty"`
		Type   string  `json:"type,omitempty"`
	}{Values: r.Values, Number: r.Number, Type: r.Type}
	if r.Subkey != "" {
		body.Subkey = &r.Subkey
	}
	return c.attrsWrite(ctx, request{method: http.MethodPut, path: "/entities/" + pathEscape(name) + "/attrs/" + pathEscape(r.Key),
		body: body, header: ifMatchHeader(r.IfMatch)})
}

// DelAttrRequest selects the values of a key to delete: all of them, or
// those with the value (its text as Attr.Text shows it), subkey and
// number given.
type DelAttrRequest struct {
	Key     string
	Subkey  string
	Number  *int64
	Value   *string
	IfMatch int64
}

// DelAttr deletes values of a key; none matching is not_found.
func (c *Client) DelAttr(ctx context.Context, name string, r DelAttrRequest) (*Attrs, error) {
	if r.Key == "" {
		return nil, errors.New("DelAttr: the key is required")
	}
	q := url.Values{}
	if r.Subkey != "" {
		q.Set("subkey", r.Subkey)
	}
	if r.Number != nil {
		q.Set("number", strconv.FormatInt(*r.Number, 10))
	}
	if r.Value != nil {
		q.Set("value", *r.Value)
	}
	return c.attrsWrite(ctx, request{method: http.MethodDelete, path: "/entities/" + pathEscape(name) + "/attrs/" + pathEscape(r.Key),
		query: q, header: ifMatchHeader(r.IfMatch)})
}

// Placement is where a child goes in a container with units: Position is
// the lowest unit (1 is the bottom), Height defaults to the child's.
type Placement struct {
	Position *int64
	Height   *int64
	// IfMatch is the version the parent must still be at (0: any).
	IfMatch int64
}

// Insert puts child into parent: physical containment, or membership when
// parent is a group. It answers the parent.
func (c *Client) Insert(ctx context.Context, parent, child string, at *Placement) (*Entity, error) {
	body := entity.InsertRequest{Child: child}
	var h http.Header
	if at != nil {
		body.Position, body.Height, h = at.Position, at.Height, ifMatchHeader(at.IfMatch)
	}
	return c.entityWrite(ctx, request{method: http.MethodPost, path: "/entities/" + pathEscape(parent) + "/children", body: body, header: h})
}

// Remove takes child out of parent. It answers the parent.
func (c *Client) Remove(ctx context.Context, parent, child string, ifMatch int64) (*Entity, error) {
	return c.entityWrite(ctx, request{method: http.MethodDelete, path: "/entities/" + pathEscape(parent) + "/children/" + pathEscape(child),
		header: ifMatchHeader(ifMatch)})
}

// CableChange is the answer to Link and Unlink.
type CableChange struct {
	Cable  Cable
	Change int64
}

// Link cables port APort of A to port BPort of B (both required).
func (c *Client) Link(ctx context.Context, cable Cable) (*CableChange, error) {
	var out entity.LinkAnswer
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/links", body: cable}, &out); err != nil {
		return nil, err
	}
	return &CableChange{Cable: out.Link, Change: out.Change}, nil
}

// Unlink removes a cable; the ports may be left out when A and B share
// exactly one.
func (c *Client) Unlink(ctx context.Context, cable Cable) (*CableChange, error) {
	var out entity.UnlinkAnswer
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/links", body: cable}, &out); err != nil {
		return nil, err
	}
	return &CableChange{Cable: out.Unlinked, Change: out.Change}, nil
}
