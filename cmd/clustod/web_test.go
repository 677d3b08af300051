package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real clustod, as make run starts it (loopback, no token), refuses
// what a web page could make the operator's browser send: a text/plain
// form minting an admin token, a request from another origin or site, a
// request to a rebound name. Its own origin, and the origin named with
// --allow-origin, pass.
func TestBrowserRequestsAgainstTheBinary(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inventory.db")
	d := startDaemon(t, "--db", db, "--listen", "127.0.0.1:0", "--allow-origin", "https://clusto.example.net")
	host := strings.TrimPrefix(d.base, "http://")
	_, port, _ := strings.Cut(host, ":")
	send := func(method, path, body string, hdr ...string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, d.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			} else {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
		return res.StatusCode, m
	}
	mint := `{"name":"mallory","role":"admin"}`
	for _, tc := range []struct {
		name   string
		hdr    []string
		status int
		code   string
	}{
		{"a text/plain form", []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"an urlencoded form", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"another origin", []string{"Content-Type", "application/json", "Origin", "http://evil.example"}, 403, "forbidden"},
		{"another port", []string{"Content-Type", "application/json", "Origin", "http://127.0.0.1:1"}, 403, "forbidden"},
		{"another site, no Origin", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, 403, "forbidden"},
		{"DNS rebinding", []string{"Content-Type", "application/json", "Host", "evil.example:" + port, "Origin", "http://evil.example:" + port, "Sec-Fetch-Site", "same-origin"}, 403, "forbidden"},
	} {
		status, body := send("POST", "/api/v1/tokens", mint, tc.hdr...)
		e, _ := body["error"].(map[string]any)
		if status != tc.status || e["code"] != tc.code || e["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	status, body := send("GET", "/api/v1/tokens", "")
	if status != 200 || len(body["tokens"].([]any)) != 0 {
		t.Fatalf("after the refused requests: %d %v", status, body)
	}
	// The server's own origin mints one (as its own web UI would)...
	status, body = send("POST", "/api/v1/tokens", mint, "Content-Type", "application/json", "Origin", d.base, "Sec-Fetch-Site", "same-origin")
	if status != 201 {
		t.Fatalf("own origin: %d %v", status, body)
	}
	secret := body["token"].(string)
	// ...and the proxy's origin is accepted as the server's own.
	status, body = send("GET", "/api/v1/whoami", "", "Authorization", "Bearer "+secret, "Origin", "https://clusto.example.net")
	if status != 200 || body["name"] != "mallory" {
		t.Fatalf("allowed origin: %d %v", status, body)
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// The real clustod answers what net/http refuses before any handler runs
// in the API's JSON error shape too, and logs it under the request id.
func TestMalformedRequestsAgainstTheBinary(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inventory.db")
	d := startDaemon(t, "--db", db, "--listen", "127.0.0.1:0")
	host := strings.TrimPrefix(d.base, "http://")
	for _, tc := range []struct {
		name, raw string
		status    int
		code      string
		says      string
	}{
		{"a bad %-escape in the path", "GET /api/v1/entities/%zz HTTP/1.1\r\nHost: " + host + "\r\n\r\n", 400, "invalid", `the request path "/api/v1/entities/%zz" is not correctly %-escaped`},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "invalid", "no Host header"},
		{"a header without a colon", "GET /healthz HTTP/1.1\r\nHost: " + host + "\r\nbroken\r\n\r\n", 400, "invalid", `header line 3 ("broken") is not "Name: value"`},
		{"a header over 1 MiB", "GET /healthz HTTP/1.1\r\nHost: " + host + "\r\nX-Big: " + strings.Repeat("b", 1<<20+8192) + "\r\n\r\n", 431, "too_large", "larger than the limit of 1048576 bytes"},
		{"HTTP/3.0", "GET /healthz HTTP/3.0\r\nHost: " + host + "\r\n\r\n", 505, "invalid", `HTTP version "HTTP/3.0" is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			go io.WriteString(conn, tc.raw)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Error struct {
					Code      string `json:"code"`
					Message   string `json:"message"`
					RequestID string `json:"request_id"`
				} `json:"error"`
			}
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatalf("answer %d is not JSON: %v", res.StatusCode, err)
			}
			e := body.Error
			if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/json" || e.Code != tc.code ||
				!strings.Contains(e.Message, tc.says) || e.RequestID == "" || res.Header.Get("X-Request-Id") != e.RequestID {
				t.Fatalf("%d %v %+v; want %d %s %q", res.StatusCode, res.Header, e, tc.status, tc.code, tc.says)
			}
			waitFor(t, func() bool { return strings.Contains(d.log(), `"request_id":"`+e.RequestID+`"`) })
		})
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
