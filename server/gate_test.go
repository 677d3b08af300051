package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

// What a web page can make the browser send to a server without tokens
// (on loopback, as make run starts it) is refused, unless it comes from
// the server's own origin: above all, minting an admin token. Each case
// runs against a fresh server, so that a token that got through would show.
func TestBrowserRequestsToAnAnonymousServer(t *testing.T) {
	tests := []struct {
		name   string
		hdr    []string
		status int
		code   string
		says   string
	}{
		{name: "a program: no Origin, no Sec-Fetch-Site", status: 201},
		{name: "a text/plain form", hdr: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type",
			says: "the request is sent as text/plain; this API takes only application/json"},
		{name: "an urlencoded form", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, code: "unsupported_media_type",
			says: "sent as application/x-www-form-urlencoded"},
		{name: "a multipart form", hdr: []string{"Content-Type", "multipart/form-data; boundary=x"}, status: 415, code: "unsupported_media_type",
			says: "sent as multipart/form-data"},
		{name: "a body without Content-Type", hdr: []string{"Content-Type", ""}, status: 415, code: "unsupported_media_type",
			says: "the request has a body but no Content-Type; send it as Content-Type: application/json"},
		{name: "a bare word", hdr: []string{"Content-Type", "json"}, status: 415, code: "unsupported_media_type", says: "the request is sent as json;"},
		{name: "not a media type", hdr: []string{"Content-Type", "application/json; charset"}, status: 415, code: "unsupported_media_type",
			says: `Content-Type "application/json; charset" is not a media type`},
		{name: "JSON declared UTF-8", hdr: []string{"Content-Type", "application/json; charset=UTF-8"}, status: 201},
		{name: "JSON in another charset", hdr: []string{"Content-Type", "application/json; charset=iso-8859-1"}, status: 415, code: "unsupported_media_type",
			says: "charset iso-8859-1; it must be UTF-8"},
		{name: "a foreign origin", hdr: []string{"Origin", "http://evil.example"}, status: 403, code: "forbidden",
			says: `the request comes from a web page of another origin (Origin "http://evil.example"); this server answers only its own origin, http://127.0.0.1:`},
		{name: "a sandboxed or file:// page", hdr: []string{"Origin", "null"}, status: 403, code: "forbidden", says: `(Origin "null")`},
		{name: "another port of the same address", hdr: []string{"Origin", "http://127.0.0.1:1", "Sec-Fetch-Site", "same-site"}, status: 403, code: "forbidden",
			says: `(Origin "http://127.0.0.1:1")`},
		{name: "the server's own origin", hdr: []string{"Origin", "OWN", "Sec-Fetch-Site", "same-origin"}, status: 201},
		{name: "its own origin as localhost", hdr: []string{"Host", "localhost:PORT", "Origin", "http://localhost:PORT"}, status: 201},
		{name: "cross-site without Origin", hdr: []string{"Sec-Fetch-Site", "cross-site"}, status: 403, code: "forbidden",
			says: "a web page of another site (Sec-Fetch-Site: cross-site)"},
		{name: "same-site without Origin", hdr: []string{"Sec-Fetch-Site", "same-site"}, status: 403, code: "forbidden",
			says: "another origin of the same site (another port or subdomain)"},
		{name: "an unknown Sec-Fetch-Site", hdr: []string{"Sec-Fetch-Site", "sideways"}, status: 403, code: "forbidden", says: `Sec-Fetch-Site "sideways" is not one a browser sends`},
		{name: "typed by the user", hdr: []string{"Sec-Fetch-Site", "none"}, status: 201},
		{name: "DNS rebinding", hdr: []string{"Host", "evil.example:PORT", "Origin", "http://evil.example:PORT", "Sec-Fetch-Site", "same-origin"}, status: 403, code: "forbidden",
			says: `not to Host "evil.example:PORT": a web page under another name must not reach it (DNS rebinding)`},
		{name: "a name of the operator's", hdr: []string{"Host", "inventory.lan:PORT"}, status: 403, code: "forbidden", says: `Host "inventory.lan:PORT"`},
		{name: "localhost without a port", hdr: []string{"Host", "localhost"}, status: 201},
		{name: "LOCALHOST", hdr: []string{"Host", "LOCALHOST:PORT"}, status: 201},
		{name: "[::1]", hdr: []string{"Host", "[::1]:PORT"}, status: 201},
		{name: "[::1] without a port", hdr: []string{"Host", "[::1]"}, status: 201},
		{name: "127.0.0.2", hdr: []string{"Host", "127.0.0.2:PORT"}, status: 201},
		{name: "another address of the machine", hdr: []string{"Host", "192.0.2.7:PORT"}, status: 403, code: "forbidden", says: `Host "192.0.2.7:PORT"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.ts.URL, "http://"))
			fill := strings.NewReplacer("OWN", e.ts.URL, "PORT", port)
			var hdr []string
			for _, h := range tc.hdr {
				hdr = append(hdr, fill.Replace(h))
			}
			r := e.do("POST", api+"/tokens", `{"name":"mallory","role":"admin"}`, hdr...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			has, err := e.store.HasTokens(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.status != 201 {
				got := r.wantErr(t, tc.status, tc.code)
				if says := fill.Replace(tc.says); !strings.Contains(got.Message, says) {
					t.Errorf("message %q does not say %q", got.Message, says)
				}
				if has {
					t.Errorf("a refused request minted a token")
				}
			} else if !has {
				t.Errorf("201 but no token stored")
			}
		})
	}
}

// The checks hold for reads and for every path, and an empty body needs
// no Content-Type, but one declared must be JSON.
func TestGateOnOtherRequests(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server", "s2", "server")
	tests := []struct {
		name, method, path string
		body               any
		hdr                []string
		status             int
	}{
		{"a read from another site", "GET", api + "/entities/s1", nil, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"a read from another origin", "GET", api + "/changes", nil, []string{"Origin", "http://evil.example"}, 403},
		{"metrics from another site", "GET", "/metrics", nil, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"a same-origin read", "GET", api + "/entities/s1", nil, []string{"Sec-Fetch-Site", "same-origin"}, 200},
		{"an unknown path from another site", "GET", "/nothing", nil, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"a DELETE without a body", "DELETE", api + "/entities/s2", nil, nil, 200},
		{"a form type on an empty body", "POST", api + "/admin/backup", nil, []string{"Content-Type", "text/plain"}, 415},
		{"a read declared JSON", "GET", api + "/entities/s1", nil, []string{"Content-Type", "application/json"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.changeCount()
			r := e.do(tc.method, tc.path, tc.body, tc.hdr...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.status >= 400 {
				r.wantErr(t, tc.status, map[int]string{403: "forbidden", 415: "unsupported_media_type"}[tc.status])
				if after := e.changeCount(); after != before {
					t.Errorf("the log moved from %d to %d", before, after)
				}
			}
		})
	}
	if _, err := os.Stat(e.srv.BackupDir()); !os.IsNotExist(err) {
		t.Errorf("the refused backup made the backup directory: %v", err)
	}
}

// With tokens a Host of any name passes (a token cannot be rebound), but
// a foreign origin does not; the operator's proxy origin is one's own.
func TestGateWithTokensAndAllowedOrigins(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.AllowAnonymous = false
		o.AllowedOrigins = []string{"HTTPS://Clusto.Example.NET:443/", "not an origin"}
	})
	e.token = e.newToken("ops", entity.RoleAdmin)
	tests := []struct {
		name   string
		hdr    []string
		status int
		says   string
	}{
		{"any Host name", []string{"Host", "clusto.example.net"}, 200, ""},
		{"the proxy's origin", []string{"Host", "127.0.0.1:8642", "Origin", "https://clusto.example.net"}, 200, ""},
		{"the proxy's origin on another port", []string{"Origin", "https://clusto.example.net:8443"}, 403,
			`answers only its own origin, http://127.0.0.1:PORT, or https://clusto.example.net`},
		{"a foreign origin", []string{"Origin", "https://evil.example"}, 403, `(Origin "https://evil.example")`},
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.ts.URL, "http://"))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", api+"/whoami", nil, tc.hdr...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.status == 403 {
				if got := r.wantErr(t, 403, "forbidden"); !strings.Contains(got.Message, strings.ReplaceAll(tc.says, "PORT", port)) {
					t.Errorf("message %q does not say %q", got.Message, tc.says)
				}
			}
		})
	}
	// Two Origin headers are not what a browser sends.
	two := httptest.NewRequest("GET", api+"/whoami", nil)
	two.Header["Origin"] = []string{"https://clusto.example.net", "https://clusto.example.net"}
	if err := e.srv.checkOrigin(two); !entity.IsKind(err, entity.KindForbidden) || !strings.Contains(err.Error(), "2 Origin headers") {
		t.Errorf("two Origin headers: %v", err)
	}
	if !strings.Contains(e.logs.String(), `"msg":"allowed origin ignored"`) {
		t.Errorf("the bad origin was not logged:\n%s", e.logs.String())
	}
}

func TestParseOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://clusto.example.net", "https://clusto.example.net"},
		{"HTTPS://Clusto.Example.NET:443/", "https://clusto.example.net"},
		{"http://10.0.0.5:80", "http://10.0.0.5"},
		{"http://[::1]:8642", "http://[::1]:8642"},
		{"http://127.0.0.1:8642", "http://127.0.0.1:8642"},
		{"null", ""},
		{"clusto.example.net", ""},
		{"ftp://clusto.example.net", ""},
		{"https://clusto.example.net/ui/", ""},
		{"https://user@clusto.example.net", ""},
		{"https://clusto.example.net?x=1", ""},
		{"https://clusto.example.net:", ""},
		{"https://clusto.example.net:port", ""},
		{"https://", ""},
	} {
		got, err := ParseOrigin(tc.in)
		if (err == nil) != (tc.want != "") || got != tc.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// A query string that r.URL.Query() would read only in part is refused,
// naming the bad part, rather than have a parameter silently dropped: a
// cascade that does not happen, a since that is not applied.
func TestMalformedQueryStrings(t *testing.T) {
	e := newEnv(t)
	e.mk("rack1", "rack", "s1", "server")
	e.do("POST", api+"/entities/rack1/children", map[string]any{"child": "s1", "position": 1}).want(t, 201)
	tests := []struct {
		name, method, path string
		status             int
		says               string
	}{
		{"a bad escape in a key", "GET", api + "/entities/s1?%zz=1", 400, `query string part "%zz=1" is not correctly %-escaped (invalid URL escape "%zz")`},
		{"a bad escape in a value", "DELETE", api + "/entities/rack1?cascade=tru%e", 400, `query string part "cascade=tru%e" is not correctly %-escaped (invalid URL escape "%e")`},
		{"a bad pair beside a good one", "DELETE", api + "/entities/rack1?cascade=true&%zz", 400, `"%zz"`},
		{"a semicolon", "GET", api + "/changes?since=1;limit=2", 400, `query string part "since=1;limit=2" holds ';'`},
		{"not UTF-8", "GET", api + "/query?q=name:%ff", 400, `query string part "q=name:%ff" is not valid UTF-8 once unescaped`},
		{"on a path that does not exist", "GET", "/nothing?%zz", 400, `"%zz"`},
		{"well-formed escapes", "GET", api + "/entities/s1?merged=%74rue", 200, ""},
		{"an empty pair", "GET", api + "/entities/s1?&merged=true&", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.changeCount()
			r := e.do(tc.method, tc.path, nil)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.status == 400 {
				if got := r.wantErr(t, 400, "invalid"); !strings.Contains(got.Message, tc.says) {
					t.Errorf("message %q does not say %q", got.Message, tc.says)
				}
				if after := e.changeCount(); after != before {
					t.Errorf("the log moved from %d to %d", before, after)
				}
			}
		})
	}
	// The rack was not deleted, without cascade or with it.
	if got := e.get("rack1"); len(got.Children) != 1 {
		t.Errorf("rack1 = %+v", got)
	}
}

// An escaped UTF-16 surrogate without its other half is refused with
// where it is, as an invalid UTF-8 byte is; a whole pair, and text that
// only looks like an escape, are stored as sent.
func TestSurrogateEscapes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, body string
		status     int
		says       string
		stored     string
	}{
		{"a lone high surrogate", `{"name":"sur\ud800x","driver":"server"}`, 400,
			`request body holds \ud800 at byte 12: half of a UTF-16 surrogate pair without the other half`, ""},
		{"a lone low surrogate", `{"name":"a\uDC00","driver":"server"}`, 400, `\uDC00 at byte 10`, ""},
		{"a high surrogate before a plain escape", `{"driver":"server","name":"b\ud83d\u0041"}`, 400, `\ud83d at byte 28`, ""},
		{"two high surrogates", `{"name":"c\ud83d\ud83d","driver":"server"}`, 400, `\ud83d at byte 10`, ""},
		{"a high surrogate at the end of a string", `{"name":"d\ud83d","driver":"server"}`, 400, `\ud83d at byte 10`, ""},
		{"in a nested value", `{"name":"e1","driver":"server","attrs":[{"key":"note","value":{"k":["\udfff"]}}]}`, 400, `\udfff at byte 69`, ""},
		{"a whole pair", `{"name":"smile\ud83d\ude00","driver":"server"}`, 201, "", "smile\U0001F600"},
		{"an escaped backslash before u", `{"name":"lit\\ud800","driver":"server"}`, 201, "", `lit\ud800`},
		{"an escaped quote, then a pair", `{"name":"q\"\ud83d\ude00","driver":"server"}`, 201, "", "q\"\U0001F600"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.changeCount()
			r := e.do("POST", api+"/entities", tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.status == 400 {
				if got := r.wantErr(t, 400, "invalid"); !strings.Contains(got.Message, tc.says) {
					t.Errorf("message %q does not say %q", got.Message, tc.says)
				}
				if after := e.changeCount(); after != before {
					t.Errorf("the log moved from %d to %d", before, after)
				}
				return
			}
			if diff := cmp.Diff(tc.stored, r.entity(t).Name); diff != "" {
				t.Errorf("stored name (-want +got):\n%s", diff)
			}
		})
	}
	// Nothing holds the replacement character a lone surrogate became.
	var page entity.Results
	e.do("GET", api+"/query?q=*", nil).want(t, http.StatusOK).decode(t, &page)
	for _, ent := range page.Results {
		if strings.ContainsRune(ent.Name, '\uFFFD') {
			t.Errorf("stored %q", ent.Name)
		}
	}
	if page.Total != 3 {
		t.Errorf("%d entities, want the 3 accepted", page.Total)
	}
}
