package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// Lookup finds the one entity a term names: its name, an IP address, a MAC
// address or a serial number. matchedBy says how it matched (name, ip, mac
// or serial). Several matches are a conflict whose Details list the
// candidates.
func (c *Client) Lookup(ctx context.Context, term string) (e *Entity, matchedBy string, err error) {
	var out Entity
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/lookup", query: url.Values{"term": {term}}, retry: true}, &out)
	if err != nil {
		return nil, "", err
	}
	return &out, resp.header.Get("X-Clusto-Matched-By"), nil
}

// Locate tells where an entity is and what it is plugged into, as of a
// change (0: now).
func (c *Client) Locate(ctx context.Context, name string, at int64) (*Location, error) {
	var out Location
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/entities/" + pathEscape(name) + "/locate", query: atQuery(nil, at), retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Console tells which console server ports an entity's console ports are
// cabled to.
func (c *Client) Console(ctx context.Context, name string, at int64) (*Consoles, error) {
	var out Consoles
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/entities/" + pathEscape(name) + "/console", query: atQuery(nil, at), retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Power tells which PDU outlets an entity's power ports are cabled to.
func (c *Client) Power(ctx context.Context, name string, at int64) (*Power, error) {
	var out Power
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/entities/" + pathEscape(name) + "/power", query: atQuery(nil, at), retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func pageQuery(p Page) url.Values {
	q := url.Values{}
	if p.Since > 0 {
		q.Set("since", strconv.FormatInt(p.Since, 10))
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	return q
}

// History is a page of the changes about an entity, oldest first.
func (c *Client) History(ctx context.Context, name string, p Page) (*Changes, error) {
	var out Changes
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/entities/" + pathEscape(name) + "/history", query: pageQuery(p), retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Changes is a page of the whole change log, oldest first.
func (c *Client) Changes(ctx context.Context, p Page) (*Changes, error) {
	var out Changes
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/changes", query: pageQuery(p), retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Query answers one page of a query (q.Explain is ignored: see Explain).
// It is sent as POST /query, which takes queries of any length; it changes
// nothing, so it is retried like a read.
func (c *Client) Query(ctx context.Context, q Query) (*Results, error) {
	q.Explain = false
	var out Results
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/query", body: q, retry: true}, &out); err != nil {
		return nil, err
	}
	if out.Results == nil {
		out.Results = []entity.Entity{}
	}
	return &out, nil
}

// QuerySummary answers one page of a query in the summary view: each
// match's name, driver, kind and version, which is all the query reads, so
// it costs the server far less than whole entities.
func (c *Client) QuerySummary(ctx context.Context, q Query) (*entity.SummaryResults, error) {
	q.Explain = false
	q.View = entity.ViewSummary
	var out entity.SummaryResults
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/query", body: q, retry: true}, &out); err != nil {
		return nil, err
	}
	if out.Results == nil {
		out.Results = []entity.Summary{}
	}
	return &out, nil
}

// QueryAll follows the cursors of a query to its last page and returns
// every match. q.Limit is the page size. Its Total is exact whatever
// q.Total asked of the pages: it is how many matches it read.
func (c *Client) QueryAll(ctx context.Context, q Query) (*Results, error) {
	all := &Results{Results: []entity.Entity{}}
	for {
		page, err := c.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		all.Results = append(all.Results, page.Results...)
		if page.NextCursor == "" || page.NextCursor == q.Cursor {
			all.Total = len(all.Results)
			return all, nil
		}
		q.Cursor = page.NextCursor
	}
}

// Explain returns the SQL a query compiles to, without running it.
func (c *Client) Explain(ctx context.Context, q Query) (*Explanation, error) {
	q.Explain = true
	var out Explanation
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/query", body: q, retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health reads GET /healthz (no token needed).
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var out Health
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/healthz", retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Whoami names the token the client uses and its role.
func (c *Client) Whoami(ctx context.Context) (*Whoami, error) {
	var out Whoami
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/whoami", retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Drivers lists the drivers the server knows, by name (without the
// PortList that Driver spells out).
func (c *Client) Drivers(ctx context.Context) ([]*drivers.Driver, error) {
	var out entity.DriverList
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/drivers", retry: true}, &out); err != nil {
		return nil, err
	}
	return out.Drivers, nil
}

// Driver reads one driver, with its ports spelt out in PortList.
func (c *Client) Driver(ctx context.Context, name string) (*Driver, error) {
	var out Driver
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/drivers/" + pathEscape(name), retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tokens lists the API tokens (admin); their secrets are never shown.
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var out entity.TokenList
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/tokens", retry: true}, &out); err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// CreateToken makes a token (admin); the answer is the only place its
// secret (Secret) appears.
func (c *Client) CreateToken(ctx context.Context, name, role string) (*NewToken, error) {
	var out NewToken
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/tokens", body: entity.TokenRequest{Name: name, Role: role}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeToken revokes a token at once (admin).
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/tokens/" + pathEscape(name)}, nil)
	return err
}

// TokenAudit reads a page of the token audit list (admin): the tokens
// created and revoked after event p.Since, oldest first.
func (c *Client) TokenAudit(ctx context.Context, p Page) (*TokenAudit, error) {
	var out TokenAudit
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/tokens/audit", query: pageQuery(p), retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
