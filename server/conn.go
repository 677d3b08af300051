package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clusto/clusto/entity"
)

// MaxHeaderBytes is the most a request line and its header fields may
// take (net/http's default); clustod sets it on its http.Server, so that
// the answer beyond it can say what the limit is.
const MaxHeaderBytes = http.DefaultMaxHeaderBytes

// Listener wraps ln so that the answers net/http writes by itself are the
// API's JSON errors like every other. When a request cannot be read (a
// bad request line or %-escape in its path, a malformed header, a header
// over MaxHeaderBytes, an unknown Transfer-Encoding or Expect, an HTTP
// version other than 1.x), net/http writes a canned text/plain answer
// straight to the connection, before any handler runs and with nothing the
// server can hook into. The connection's Write recognises exactly those
// answers, and writes instead the same status with a JSON error body, a
// request id, and a message saying what was wrong and where, found by
// reading again the request head the connection received. ln must be a
// plain TCP listener: under TLS the bytes written would be encrypted.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &jsonErrorListener{Listener: ln, s: s}
}

type jsonErrorListener struct {
	net.Listener
	s *Server
}

func (l *jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c, s: l.s}, nil
}

// maxHeadRecord bounds what a connection keeps of the request being read,
// for explaining a refusal: a request line and ordinary headers fit.
const maxHeadRecord = 8 << 10

// jsonErrorConn is a connection of Listener. head is the start of what was
// read since the last answer was written, that is, of the request net/http
// is reading (best effort: a client that pipelines requests sends the next
// one before the answer, and then gets a message that does not pinpoint
// the fault).
type jsonErrorConn struct {
	net.Conn
	s    *Server
	mu   sync.Mutex
	head []byte
}

func (c *jsonErrorConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if room := maxHeadRecord - len(c.head); room > 0 {
			c.head = append(c.head, p[:min(n, room)]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	status, text, canned := cannedAnswer(p)
	var answer []byte
	if canned {
		answer = c.s.cannedError(status, text, c.head, c.RemoteAddr())
	}
	c.head = c.head[:0]
	c.mu.Unlock()
	if !canned {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(answer); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom keeps net/http's sendfile path (backup downloads): a body is
// never a canned answer.
func (c *jsonErrorConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite lets net/http half-close after a 431, as it does on a bare
// TCP connection, so that the client reads the answer.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// The canned answers, as net/http's conn.serve writes them (Go 1.26):
//
//	HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request
//	HTTP/1.1 400 Bad Request: missing required Host header\r\n...\r\n\r\n400 Bad Request: missing required Host header
//	HTTP/1.1 501 Not Implemented\r\n...\r\n\r\nUnsupported transfer encoding
//
// (431 and 505 like the first two), each in one Write, and the 417 to an
// unknown Expect, written through the response with only Connection,
// Date and Content-Length: 0. No handler of this server answers text/plain
// with Connection: close, or 417.
const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// cannedAnswer reports whether p is one of net/http's canned answers, with
// its status and the text net/http gave after the status ("" for none).
func cannedAnswer(p []byte) (status int, text string, ok bool) {
	rest, found := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !found || len(rest) < 4 || rest[3] != ' ' {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil {
		return 0, "", false
	}
	if status == http.StatusExpectationFailed {
		if !isExpectationFailed(rest) {
			return 0, "", false
		}
		return status, "", true
	}
	line, body, found := bytes.Cut(rest, []byte(cannedHeaders))
	if !found || bytes.ContainsAny(line, "\r\n") {
		return 0, "", false
	}
	reason := http.StatusText(status) + ": "
	switch {
	case status == http.StatusNotImplemented && string(body) == "Unsupported transfer encoding" && string(line) == "501 Not Implemented":
		return status, "", true
	case !bytes.Equal(line, body) || string(line[4:]) != http.StatusText(status) && !strings.HasPrefix(string(line[4:]), reason):
		return 0, "", false
	}
	return status, strings.TrimPrefix(strings.TrimPrefix(string(line[4:]), http.StatusText(status)), ": "), true
}

// isExpectationFailed recognises net/http's 417 (after "HTTP/1.1 ").
func isExpectationFailed(rest []byte) bool {
	head, body, found := bytes.Cut(rest, []byte("\r\n\r\n"))
	if !found || len(body) != 0 {
		return false
	}
	lines := strings.Split(string(head), "\r\n")
	if lines[0] != "417 Expectation Failed" {
		return false
	}
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ": ")
		switch {
		case name == "Connection" && value == "close", name == "Content-Length" && value == "0", name == "Date":
			seen[name] = true
		default:
			return false
		}
	}
	return len(seen) == 3
}

// cannedError is the JSON answer that replaces a canned one, and logs it:
// no handler runs, so this is the request's only log line.
func (s *Server) cannedError(status int, text string, head []byte, remote net.Addr) []byte {
	kind, msg := explainRefusal(status, text, head)
	id := newRequestID()
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	d := entity.ErrorDetail{Code: string(kind), Message: msg, RequestID: id}
	if status == http.StatusRequestHeaderFieldsTooLarge {
		d.Details = map[string]any{"limit": MaxHeaderBytes}
	}
	enc.Encode(entity.ErrorBody{Error: d})
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\nDate: %s\r\nX-Request-Id: %s\r\n\r\n",
		status, http.StatusText(status), body.Len(), time.Now().UTC().Format(http.TimeFormat), id)
	out.Write(body.Bytes())
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "malformed request", slog.Int("status", status), slog.String("request_id", id),
		slog.String("remote", addrString(remote)), slog.String("error", msg))
	s.metrics.requests.WithLabelValues("malformed", "", strconv.Itoa(status)).Inc()
	return out.Bytes()
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// explainRefusal says what was wrong with a request net/http refused,
// from its status, the text it gave, and the request head as received.
func explainRefusal(status int, text string, head []byte) (entity.ErrorKind, string) {
	lines := headLines(head)
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return entity.KindTooLarge, fmt.Sprintf("the request line and header fields are larger than the limit of %d bytes; send fewer or shorter headers", MaxHeaderBytes)
	case http.StatusNotImplemented:
		if v, ok := headerValue(lines, "Transfer-Encoding"); ok {
			return entity.KindInvalid, fmt.Sprintf("Transfer-Encoding %q is not supported; send the body with Content-Length, or Transfer-Encoding: chunked", clip(v))
		}
		return entity.KindInvalid, "the request's Transfer-Encoding is not supported; send the body with Content-Length, or Transfer-Encoding: chunked"
	case http.StatusHTTPVersionNotSupported:
		if len(lines) > 0 {
			if i := strings.LastIndexByte(lines[0], ' '); i >= 0 {
				return entity.KindInvalid, fmt.Sprintf("HTTP version %q is not supported; send HTTP/1.1", clip(lines[0][i+1:]))
			}
		}
		return entity.KindInvalid, "the request's HTTP version is not supported; send HTTP/1.1"
	case http.StatusExpectationFailed:
		if v, ok := headerValue(lines, "Expect"); ok {
			return entity.KindInvalid, fmt.Sprintf("Expect: %q is not supported; the only expectation this server meets is 100-continue", clip(v))
		}
		return entity.KindInvalid, "the request's Expect header is not supported; the only expectation this server meets is 100-continue"
	}
	switch text {
	case "":
		return entity.KindInvalid, explainUnreadable(head, lines)
	case "missing required Host header":
		return entity.KindInvalid, "the request has no Host header, which HTTP/1.1 requires"
	case "malformed Host header":
		if v, ok := headerValue(lines, "Host"); ok {
			return entity.KindInvalid, fmt.Sprintf("the Host header %q is not a host name or address with an optional port", clip(v))
		}
		return entity.KindInvalid, "the Host header is not a host name or address with an optional port"
	case "invalid header name", "invalid header value":
		if msg, ok := badHeaderLine(lines); ok {
			return entity.KindInvalid, msg
		}
		return entity.KindInvalid, "a header holds a character not allowed there"
	}
	return entity.KindInvalid, "the request is not valid HTTP/1.1: " + text
}

// explainUnreadable explains a request net/http could not read at all, by
// reading the head again the same way and naming what failed.
func explainUnreadable(head []byte, lines []string) string {
	const generic = "the request is not valid HTTP/1.1"
	_, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return generic // the head was not all received, or not from its start
	}
	var ue *url.Error
	var ee url.EscapeError
	var pe textproto.ProtocolError
	msg := err.Error()
	switch {
	case errors.As(err, &ue) && errors.As(ue.Err, &ee):
		return fmt.Sprintf("the request path %q is not correctly %%-escaped (%s); write a '%%' itself as %%25", clip(ue.URL), ee.Error())
	case errors.As(err, &ue):
		return fmt.Sprintf("the request target %q is not a path such as /api/v1/entities (%s)", clip(ue.URL), strings.TrimPrefix(ue.Err.Error(), "net/url: "))
	case strings.HasPrefix(msg, "malformed HTTP request "):
		return fmt.Sprintf("the request line %q is not METHOD PATH HTTP/1.1", clip(lines[0]))
	case strings.HasPrefix(msg, "invalid method "):
		return fmt.Sprintf("the request method %s is not a valid HTTP method", clip(strings.TrimPrefix(msg, "invalid method ")))
	case strings.HasPrefix(msg, "malformed HTTP version "):
		return fmt.Sprintf("the request line ends in %s, not an HTTP version such as HTTP/1.1", clip(strings.TrimPrefix(msg, "malformed HTTP version ")))
	case errors.As(err, &pe):
		if msg, ok := badHeaderLine(lines); ok {
			return msg
		}
		return "a header line is not \"Name: value\""
	case msg == "too many Host headers":
		return "the request has more than one Host header"
	case strings.HasPrefix(msg, "bad Content-Length "), strings.HasPrefix(msg, "invalid empty Content-Length"):
		v, _ := headerValue(lines, "Content-Length")
		return fmt.Sprintf("Content-Length %q is not a number of bytes", clip(v))
	case strings.Contains(msg, "multiple Content-Length headers"):
		return "the request has Content-Length headers that disagree"
	}
	return generic + ": " + clip(strings.TrimPrefix(msg, "http: "))
}

// headLines splits a request head as received into its lines, up to the
// blank line that ends it.
func headLines(head []byte) []string {
	text := string(head)
	if i := strings.Index(text, "\r\n\r\n"); i >= 0 {
		text = text[:i]
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// badHeaderLine describes the first header line that is not "Name:
// value" with a token for a name and no control character in the value.
// Lines are numbered from the request line, 1; a value is never quoted,
// as it may be a credential.
func badHeaderLine(lines []string) (string, bool) {
	for i, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		switch {
		case !ok || name == "" || strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t"):
			return fmt.Sprintf("header line %d (%q) is not \"Name: value\"", i+2, clip(l)), true
		case !validHeaderName(name):
			return fmt.Sprintf("header line %d (%q): the name %q holds a character not allowed in a header name", i+2, clip(l), clip(name)), true
		case strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }):
			return fmt.Sprintf("header line %d: the value of %s holds a control character", i+2, clip(name)), true
		}
	}
	return "", false
}

// headerValue is the first value of a header among the head's lines.
func headerValue(lines []string, name string) (string, bool) {
	for _, l := range lines[1:] {
		if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// validHeaderName reports whether name is an HTTP token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
