package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clusto/clusto/entity"
)

// Nasty inputs each get a clear 4xx and store nothing.
func TestHostileInput(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server")
	e.block("net", "10.0.3.0/24")
	deep := strings.Repeat("(", 100) + "*" + strings.Repeat(")", 100)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
	}{
		{"SQL in a name", "POST", api + "/entities", `{"name":"x'); DROP TABLE entities;--","driver":"server"}`, 400},
		{"SQL in a driver", "POST", api + "/entities", `{"name":"x1","driver":"server' OR 1=1 --"}`, 400},
		{"NUL in a name", "POST", api + "/entities", `{"name":"a\u0000b","driver":"server"}`, 400},
		{"NUL in a value", "POST", api + "/entities/s1/attrs", `{"key":"k","value":"a\u0000b"}`, 400},
		{"1 MB name", "POST", api + "/entities", `{"name":"` + strings.Repeat("n", 1<<20) + `","driver":"server"}`, 400},
		{"invalid UTF-8 name", "POST", api + "/entities", "{\"name\":\"a\xffb\",\"driver\":\"server\"}", 400},
		{"huge number", "POST", api + "/entities/s1/attrs", `{"key":"memory_gb","value":1e999}`, 400},
		{"huge integer", "POST", api + "/entities/s1/attrs", `{"key":"memory_gb","value":123456789012345678901234567890}`, 400},
		{"number for a position", "POST", api + "/entities/net/children", `{"child":"s1","position":1e300}`, 400},
		{"negative count", "POST", api + "/ipblocks/net/allocate", `{"entity":"s1","count":-5}`, 400},
		{"enormous count", "POST", api + "/ipblocks/net/allocate", `{"entity":"s1","count":99999999999}`, 400},
		{"IPv4-mapped IPv6 outside the block", "POST", api + "/ipblocks/net/allocate", `{"entity":"s1","address":"::ffff:10.9.0.1"}`, 409},
		{"address with a zone", "POST", api + "/ipblocks/net/allocate", `{"entity":"s1","address":"fe80::1%eth0"}`, 400},
		{"deeply nested query", "GET", api + "/query?q=" + url.QueryEscape(deep), "", 400},
		{"SQL in a query", "GET", api + "/query?q=" + url.QueryEscape(`name:"'; DELETE FROM entities; --"`), "", 200},
		{"query over 4 KiB", "GET", api + "/query?q=" + url.QueryEscape("name:"+strings.Repeat("a", 5000)), "", 413},
		{"catastrophic regex", "GET", api + "/query?q=" + url.QueryEscape("name:/(a+)+$/"), "", 200},
		{"not JSON", "POST", api + "/entities", `{"name":`, 400},
		{"JSON array instead of object", "POST", api + "/entities", `[1,2,3]`, 400},
		{"two JSON values", "POST", api + "/entities", `{"name":"x2","driver":"server"}{"name":"x3","driver":"server"}`, 400},
		{"unknown field", "POST", api + "/entities", `{"name":"x4","driver":"server","admin":true}`, 400},
		{"path traversal in a name", "GET", api + "/entities/..%2F..%2Fetc%2Fpasswd", "", 404},
		{"oversized body", "POST", api + "/entities", `{"name":"x5","driver":"server","attrs":[{"key":"k","value":"` + strings.Repeat("v", 5<<20) + `"}]}`, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.changeCount()
			r := e.do(tc.method, tc.path, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.Status, tc.status, r.Body)
			}
			if r.Status >= 400 && tc.status != 413 && !strings.Contains(string(r.Body), `"message":"`) {
				t.Errorf("no message: %.300s", r.Body)
			}
			if strings.Contains(string(r.Body), "SQL") || strings.Contains(string(r.Body), "sqlite") || strings.Contains(string(r.Body), "goroutine") {
				t.Errorf("internals leaked: %.300s", r.Body)
			}
			if after := e.changeCount(); after != before {
				t.Errorf("the log moved from %d to %d", before, after)
			}
		})
	}
	// The inventory is intact.
	var page entity.Results
	e.do("GET", api+"/query?q=*", nil).want(t, http.StatusOK).decode(t, &page)
	if page.Total != 2 {
		t.Errorf("inventory has %d entities after the attack, want 2", page.Total)
	}
}
