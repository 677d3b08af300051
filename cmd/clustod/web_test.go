package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
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
