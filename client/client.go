// Package client is a Go client for the clusto JSON API (docs/api.md). It
// is what the clusto command line is built on, and it stands on its own for
// provisioning tools: it needs nothing of the server side but the API's
// types, which are package entity's (entity/api*.go) and the server's too,
// every method takes a context, and every failure the server reports is a
// *Error with its status, code and message.
//
//	c, err := client.New("http://127.0.0.1:8642", client.WithToken(os.Getenv("CLUSTO_TOKEN")))
//	e, err := c.Entity(ctx, "s0001", nil)
//	var ce *client.Error
//	if errors.As(err, &ce) && ce.Code == client.CodeNotFound { ... }
//
// Requests are retried only when that is safe: reads (GET, and the
// read-only POST /query and /plan), allocation POSTs (which always carry an
// Idempotency-Key, so the server answers a repeat with the first answer),
// and any request the server never received (the connection was refused).
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusto/clusto/entity"
)

// DefaultServer is where clustod listens unless told otherwise.
const DefaultServer = "http://127.0.0.1:8642"

// APIPrefix is the path of the API under the server's address.
const APIPrefix = "/api/v1"

// Version is this client's version, sent in the User-Agent. Builds may set
// it with -ldflags "-X github.com/clusto/clusto/client.Version=...".
var Version = "dev"

// Client talks to one clustod. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	retries   int
	backoff   time.Duration
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as the bearer token of every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient uses h for requests (its Timeout, Transport, TLS settings).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTimeout bounds each attempt of a request, from connecting to reading
// the whole answer; 0 means no bound beyond the context's. The default is
// 30 seconds.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		h := *c.http
		h.Timeout = d
		c.http = &h
	}
}

// WithRetries sets how many times a request that is safe to repeat is
// tried again after a network failure or a 502, 503 or 504 answer (default
// 2). Waits grow from 100 ms, doubling, with jitter.
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// WithUserAgent replaces the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the server at addr ("http://host:port"; a bare
// "host:port" means http).
func New(addr string, opts ...Option) (*Client, error) {
	if addr == "" {
		addr = DefaultServer
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server address %q: the scheme must be http or https", addr)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server address %q has no host", addr)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server address %q must not hold a query or fragment", addr)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base:      u,
		http:      &http.Client{Timeout: 30 * time.Second},
		retries:   2,
		backoff:   100 * time.Millisecond,
		userAgent: "clusto-client/" + Version,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Server is the address the client sends requests to.
func (c *Client) Server() string { return c.base.String() }

// Error codes, as the API's error bodies give them (Error.Code).
const (
	CodeInvalid      = "invalid"
	CodeQuerySyntax  = "query_syntax"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodePrecondition = "precondition_failed"
	CodeTooLarge     = "too_large"
	// CodeUnsupportedMediaType is a request body not sent as
	// application/json (this client always sends JSON).
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeInternal             = "internal"
)

// Error is a failure the server answered: its HTTP status and the API's
// error body.
type Error struct {
	Status  int
	Code    string
	Message string
	// Reason is the finer code some errors carry, such as "exhausted" or
	// "insufficient".
	Reason string
	// Position locates a query syntax error; nil otherwise.
	Position  *Position
	Details   map[string]any
	RequestID string
}

// Position is a place in a query or an inventory file: 1-based line and
// column (in characters).
type Position = entity.Position

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("the server answered %d %s", e.Status, http.StatusText(e.Status))
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// UnreachableError is a request that got no answer from the server: the
// connection was refused, the name did not resolve, or no answer came in
// time.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return "cannot reach clustod at " + e.Server + ": " + describeNetError(e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// describeNetError is the short reason a request got no answer.
func describeNetError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is clustod running there?)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer in time"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "cannot resolve " + dnsErr.Name
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		var sysErr *os.SyscallError
		if errors.As(opErr.Err, &sysErr) {
			return sysErr.Err.Error()
		}
		return opErr.Err.Error()
	}
	var uErr *url.Error
	if errors.As(err, &uErr) {
		return uErr.Err.Error()
	}
	return err.Error()
}

// request is one API call.
type request struct {
	method string
	// path is under APIPrefix unless it starts with "/healthz".
	path   string
	query  url.Values
	body   any
	header http.Header
	// retry says the request may be sent again even if the server may have
	// received it: it changes nothing, or it carries an Idempotency-Key.
	retry bool
}

// response is what a call returns besides the decoded body.
type response struct {
	status int
	header http.Header
}

// change is the X-Clusto-Change of a write, 0 when absent.
func (r *response) change() int64 {
	n, _ := strconv.ParseInt(r.header.Get("X-Clusto-Change"), 10, 64)
	return n
}

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 256 << 20

// do sends the request, retrying when that is safe, and decodes a 2xx
// answer into out (when not nil).
func (c *Client) do(ctx context.Context, req request, out any) (*response, error) {
	var body []byte
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	target := c.target(req)
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, req, target, body)
		if err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
			defer resp.Body.Close()
			r := &response{status: resp.StatusCode, header: resp.Header}
			if out == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
				return r, nil
			}
			dec := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer))
			if err := dec.Decode(out); err != nil {
				return r, fmt.Errorf("%s %s: the answer is not the JSON expected: %w", req.method, req.path, err)
			}
			return r, nil
		}
		var apiErr error
		retryable := false
		if err != nil {
			if ctx.Err() != nil {
				return nil, c.transportError(ctx, req, err)
			}
			apiErr = c.transportError(ctx, req, err)
			retryable = req.retry || neverSent(err)
		} else {
			apiErr = readError(resp)
			switch resp.StatusCode {
			case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				retryable = req.retry
			}
		}
		if !retryable || attempt >= c.retries {
			return nil, apiErr
		}
		wait := c.backoff << attempt
		wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, apiErr
		case <-t.C:
		}
	}
}

// target is the URL of a request. req.path is escaped already: names go
// through pathEscape, so that a name holding '/' stays one segment.
func (c *Client) target(req request) string {
	prefix := APIPrefix
	if strings.HasPrefix(req.path, "/healthz") {
		prefix = ""
	}
	target := c.base.Scheme + "://" + c.base.Host + c.base.EscapedPath() + prefix + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	return target
}

// transportError is a request that got no answer: canceled by the caller,
// or an *UnreachableError.
func (c *Client) transportError(ctx context.Context, req request, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s %s: %w", req.method, req.path, ctx.Err())
	}
	if ctx.Err() != nil {
		return &UnreachableError{Server: c.Server(), Err: ctx.Err()}
	}
	return &UnreachableError{Server: c.Server(), Err: err}
}

// stream sends a request once (again only if it never reached the server)
// and returns a 2xx answer with its body unread, for answers that are not
// JSON. The caller closes the body.
func (c *Client) stream(ctx context.Context, req request) (*http.Response, error) {
	var body []byte
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, req, c.target(req), body)
		if err == nil {
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return resp, nil
			}
			return nil, readError(resp)
		}
		if ctx.Err() != nil || !neverSent(err) || attempt >= c.retries {
			return nil, c.transportError(ctx, req, err)
		}
		t := time.NewTimer(c.backoff << attempt)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, c.transportError(ctx, req, err)
		case <-t.C:
		}
	}
}

// send makes one attempt.
func (c *Client) send(ctx context.Context, req request, target string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, target, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.header {
		hr.Header[k] = vs
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(hr)
}

// neverSent reports whether a transport error happened before the request
// could reach the server, so that sending it again cannot repeat it.
func neverSent(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr)
}

// readError turns a non-2xx answer into an *Error.
func readError(resp *http.Response) error {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body entity.ErrorBody
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		b := body.Error
		e.Code, e.Message, e.Reason, e.Position, e.Details = b.Code, b.Message, b.Reason, b.Position, b.Details
		if b.RequestID != "" {
			e.RequestID = b.RequestID
		}
		return e
	}
	// Not the API's error body: a proxy, or not clustod at all.
	e.Code = codeForStatus(resp.StatusCode)
	text := strings.TrimSpace(string(raw))
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	e.Message = fmt.Sprintf("the server answered %d %s without a clusto error body", resp.StatusCode, http.StatusText(resp.StatusCode))
	if text != "" {
		e.Message += ": " + text
	}
	return e
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalid
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusConflict:
		return CodeConflict
	case http.StatusPreconditionFailed:
		return CodePrecondition
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedMediaType
	}
	return CodeInternal
}

// NewIdempotencyKey returns a random key for the Idempotency-Key header
// (a version 4 UUID).
func NewIdempotencyKey() string {
	var b [16]byte
	crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// pathEscape escapes one path segment (an entity name may hold '/').
func pathEscape(s string) string { return url.PathEscape(s) }

// ifMatchHeader is the If-Match header for an entity version (0: none).
func ifMatchHeader(version int64) http.Header {
	if version <= 0 {
		return nil
	}
	return http.Header{"If-Match": {`"` + strconv.FormatInt(version, 10) + `"`}}
}
