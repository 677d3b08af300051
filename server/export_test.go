package server

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Routes names every endpoint of s, as "METHOD /full/path/{template}", for
// the tests of package server_test (contract_test.go).
func Routes(s *Server) []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.Method + " " + rt.fullPath()
	}
	return out
}

// RouteOf is the endpoint r is for, named as Routes names it; "" when it
// is for none.
func RouteOf(s *Server, r *http.Request) string {
	var m mux.RouteMatch
	if s.router.Match(r, &m) && m.MatchErr == nil && m.Route != nil {
		return m.Route.GetName()
	}
	return ""
}
