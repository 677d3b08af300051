package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitForAnswer, in rawExchange's bytes, is where to wait for an answer.
const waitForAnswer = "\x00wait\x00"

// rawExchange sends raw bytes on a new connection and reads the first
// answer that is not a success.
func rawExchange(t *testing.T, e *env, raw string) *resp {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Written beside the read: the server may answer (431) before it has
	// read everything. A part after waitForAnswer is sent once the first
	// answer has come, as a client using a kept-alive connection does.
	first, second, wait := strings.Cut(raw, waitForAnswer)
	answered := make(chan struct{})
	pending := wait
	go func() {
		io.WriteString(conn, first)
		if wait {
			<-answered
			io.WriteString(conn, second)
		}
	}()
	br := bufio.NewReader(conn)
	var res *http.Response
	// Skip answers to good requests sent first on the same connection.
	for {
		res, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read answer: %v", err)
		}
		if res.StatusCode < 300 {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if pending {
				close(answered)
				pending = false
			}
			continue
		}
		break
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// The answers net/http writes by itself, before any handler runs, are the
// API's JSON errors too, with a request id and a message that says what
// was wrong and where.
func TestRefusalsOfNetHTTPAreJSON(t *testing.T) {
	e := newEnv(t)
	const host = "Host: 127.0.0.1\r\n"
	tests := []struct {
		name   string
		raw    string
		status int
		code   string
		says   string
	}{
		{"a bad %-escape in the path", "GET /api/v1/entities/a%zz HTTP/1.1\r\n" + host + "\r\n", 400, "invalid",
			`the request path "/api/v1/entities/a%zz" is not correctly %-escaped (invalid URL escape "%zz")`},
		{"a control character in the path", "GET /api/v1/entities/a\x01b HTTP/1.1\r\n" + host + "\r\n", 400, "invalid",
			`the request target "/api/v1/entities/a\x01b" is not a path such as /api/v1/entities`},
		{"not a request line", "GARBAGE\r\n" + host + "\r\n", 400, "invalid", `the request line "GARBAGE" is not METHOD PATH HTTP/1.1`},
		{"a bad method", "G(T / HTTP/1.1\r\n" + host + "\r\n", 400, "invalid", `the request method "G(T" is not a valid HTTP method`},
		{"a bad version", "GET / HTTP/one\r\n" + host + "\r\n", 400, "invalid", `the request line ends in "HTTP/one", not an HTTP version such as HTTP/1.1`},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "invalid", "the request has no Host header, which HTTP/1.1 requires"},
		{"a malformed Host", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid", `the Host header "a b" is not a host name or address`},
		{"two Hosts", "GET /healthz HTTP/1.1\r\n" + host + host + "\r\n", 400, "invalid", "the request has more than one Host header"},
		{"a bad header name", "GET /healthz HTTP/1.1\r\n" + host + "Bad Header: y\r\n\r\n", 400, "invalid",
			`header line 3 ("Bad Header: y"): the name "Bad Header" holds a character not allowed in a header name`},
		{"a header line without a colon", "GET /healthz HTTP/1.1\r\n" + host + "NoColon\r\n\r\n", 400, "invalid", `header line 3 ("NoColon") is not "Name: value"`},
		{"a control character in a value", "GET /healthz HTTP/1.1\r\n" + host + "X-Note: a\x01b\r\n\r\n", 400, "invalid",
			"header line 3: the value of X-Note holds a control character"},
		{"a bad Content-Length", "POST /api/v1/entities HTTP/1.1\r\n" + host + "Content-Length: abc\r\n\r\n", 400, "invalid",
			`Content-Length "abc" is not a number of bytes`},
		{"an unknown Transfer-Encoding", "POST /api/v1/entities HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 501, "invalid",
			`Transfer-Encoding "gzip" is not supported`},
		{"HTTP/2.5", "GET /healthz HTTP/2.5\r\n" + host + "\r\n", 505, "invalid", `HTTP version "HTTP/2.5" is not supported; send HTTP/1.1`},
		{"an unknown Expect", "GET /healthz HTTP/1.1\r\n" + host + "Expect: miracles\r\n\r\n", 417, "invalid",
			`Expect: "miracles" is not supported; the only expectation this server meets is 100-continue`},
		{"a header over 1 MiB", "GET /healthz HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("a", MaxHeaderBytes+8192) + "\r\n\r\n", 431, "too_large",
			"the request line and header fields are larger than the limit of 1048576 bytes"},
		{"a bad request after a good one", "GET /healthz HTTP/1.1\r\n" + host + "\r\n" + waitForAnswer + "GET /a%zz HTTP/1.1\r\n" + host + "\r\n", 400, "invalid",
			`the request path "/a%zz" is not correctly %-escaped`},
		// Pipelined: the second request arrives before the first answer,
		// which starts a new record; the answer is JSON but says less.
		{"a bad request pipelined after a good one", "GET /healthz HTTP/1.1\r\n" + host + "\r\nGET /a%zz HTTP/1.1\r\n" + host + "\r\n", 400, "invalid",
			"the request is not valid HTTP/1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rawExchange(t, e, tc.raw)
			got := r.wantErr(t, tc.status, tc.code)
			if !strings.Contains(got.Message, tc.says) {
				t.Errorf("message %q does not say %q", got.Message, tc.says)
			}
			if r.Header.Get("Content-Length") == "" || r.Header.Get("Date") == "" {
				t.Errorf("headers %v", r.Header)
			}
			if tc.status == 431 && got.Details["limit"] != float64(MaxHeaderBytes) {
				t.Errorf("details %v", got.Details)
			}
			var logged bool
			for _, l := range e.logs.lines(t) {
				if l["msg"] == "malformed request" && l["request_id"] == got.RequestID && l["status"] == float64(tc.status) && l["error"] == got.Message {
					logged = true
				}
			}
			if !logged {
				t.Errorf("no log line for request %s", got.RequestID)
			}
		})
	}
	// Counted apart from the routes.
	m := e.do("GET", "/metrics", nil)
	if !bytes.Contains(m.Body, []byte(`clusto_http_requests_total{method="",route="malformed",status="400"} 14`)) {
		t.Errorf("metrics lack the malformed requests:\n%s", m.Body)
	}
}

// Only net/http's exact canned answers are replaced; answers that merely
// look like them pass as they are.
func TestCannedAnswerIsExact(t *testing.T) {
	tests := []struct {
		in     string
		status int
		text   string
		ok     bool
	}{
		{"HTTP/1.1 400 Bad Request" + cannedHeaders + "400 Bad Request", 400, "", true},
		{"HTTP/1.1 400 Bad Request: missing required Host header" + cannedHeaders + "400 Bad Request: missing required Host header", 400, "missing required Host header", true},
		{"HTTP/1.1 431 Request Header Fields Too Large" + cannedHeaders + "431 Request Header Fields Too Large", 431, "", true},
		{"HTTP/1.1 501 Not Implemented" + cannedHeaders + "Unsupported transfer encoding", 501, "", true},
		{"HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\nContent-Length: 0\r\n\r\n", 417, "", true},
		{"HTTP/1.1 400 Bad Request" + cannedHeaders + "400 Bad Request and more", 0, "", false},
		{"HTTP/1.1 400 Bad Request" + cannedHeaders + "something else", 0, "", false},
		{"HTTP/1.1 400 Not The Reason" + cannedHeaders + "400 Not The Reason", 0, "", false},
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n400 Bad Request", 0, "", false},
		{"HTTP/1.1 417 Expectation Failed\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n", 0, "", false},
		{"HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nDate: x\r\nContent-Length: 2\r\n\r\n{}", 0, "", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0, "", false},
		{`{"error":"HTTP/1.1 400 Bad Request"}`, 0, "", false},
	}
	for _, tc := range tests {
		status, text, ok := cannedAnswer([]byte(tc.in))
		if status != tc.status || text != tc.text || ok != tc.ok {
			t.Errorf("cannedAnswer(%q) = %d %q %v; want %d %q %v", tc.in, status, text, ok, tc.status, tc.text, tc.ok)
		}
	}
}

// A body that holds the bytes of a canned answer is sent as it is.
func TestBodiesAreNotRewritten(t *testing.T) {
	e := newEnv(t)
	canned := "HTTP/1.1 400 Bad Request" + cannedHeaders + "400 Bad Request"
	e.do("POST", api+"/entities", map[string]any{"name": "s1", "driver": "server", "attrs": []map[string]any{{"key": "note", "value": canned}}}).want(t, 201)
	var got struct {
		Attrs []struct {
			Value string `json:"value"`
		} `json:"attrs"`
	}
	if err := json.Unmarshal(e.do("GET", api+"/entities/s1/attrs", nil).want(t, 200).Body, &got); err != nil || len(got.Attrs) != 1 || got.Attrs[0].Value != canned {
		t.Fatalf("attrs %+v %v", got, err)
	}
}
