package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/clusto/clusto/entity"
)

// handlerFunc handles one request. A returned error is answered by
// writeError, the one place errors become statuses; a handler that returns
// nil has written its response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one endpoint. Role is what the caller's token must allow: read
// for reads, write for anything that changes the inventory, admin for
// tokens, drivers and backups. Public routes (only /healthz) need no token.
type route struct {
	Method string
	// Path is under APIPrefix unless Public.
	Path   string
	Role   entity.Role
	Public bool
	// Reads marks a POST that changes nothing: its arguments travel in the
	// body because they may be too long for a URL (a query, a file to plan).
	Reads bool
	// Params are the query parameters the endpoint accepts; any other is
	// refused, so that a misspelt ?cascade=true is an error, not a no-op.
	Params []string
	// Cost says whether requests are heavy: admitted through the bounded
	// queue and run under a deadline (admit.go).
	Cost   cost
	Handle handlerFunc
	// Doc is a one-line summary, for the route listing and panics.
	Doc string
}

func (rt route) fullPath() string {
	if rt.Public {
		return rt.Path
	}
	return APIPrefix + rt.Path
}

// routeTable is every endpoint of the API. To add one, add a line here:
// registration applies authentication, the role check and query parameter
// checks. (GET and POST /query belong here too, as read routes, with a
// handler that ends in s.writeResults.)
func (s *Server) routeTable() []route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
		read, write, admin         = entity.RoleRead, entity.RoleWrite, entity.RoleAdmin
	)
	return []route{
		{Method: get, Path: "/healthz", Public: true, Handle: s.healthz, Doc: "liveness and the newest change"},
		{Method: get, Path: "/metrics", Public: true, Handle: s.serveMetrics, Doc: "Prometheus metrics"},

		{Method: post, Path: "/entities", Role: write, Handle: s.createEntity, Doc: "create an entity"},
		{Method: get, Path: "/entities/{name}", Role: read, Params: []string{"at", "merged"}, Handle: s.getEntity, Doc: "read an entity"},
		{Method: patch, Path: "/entities/{name}", Role: write, Handle: s.renameEntity, Doc: "rename an entity"},
		{Method: del, Path: "/entities/{name}", Role: write, Params: []string{"cascade"}, Handle: s.deleteEntity, Doc: "delete an entity"},

		{Method: get, Path: "/entities/{name}/attrs", Role: read, Params: []string{"key", "subkey", "at"}, Handle: s.getAttrs, Doc: "read attributes"},
		{Method: post, Path: "/entities/{name}/attrs", Role: write, Handle: s.addAttr, Doc: "add an attribute value"},
		{Method: put, Path: "/entities/{name}/attrs/{key}", Role: write, Handle: s.setAttr, Doc: "replace the values of a key"},
		{Method: del, Path: "/entities/{name}/attrs/{key}", Role: write, Params: []string{"value", "subkey", "number"}, Handle: s.delAttr, Doc: "delete values of a key"},

		{Method: post, Path: "/entities/{name}/children", Role: write, Handle: s.insertChild, Doc: "put a child in (or a member into) an entity"},
		{Method: del, Path: "/entities/{name}/children/{child}", Role: write, Handle: s.removeChild, Doc: "take a child out of an entity"},
		{Method: post, Path: "/links", Role: write, Handle: s.link, Doc: "cable two ports"},
		{Method: del, Path: "/links", Role: write, Handle: s.unlink, Doc: "remove a cable"},

		{Method: get, Path: "/lookup", Role: read, Params: []string{"term"}, Handle: s.lookup, Doc: "find an entity by name, IP, MAC or serial"},
		{Method: get, Path: "/entities/{name}/locate", Role: read, Params: []string{"at"}, Handle: s.locate, Doc: "where an entity is"},
		{Method: get, Path: "/entities/{name}/console", Role: read, Params: []string{"at"}, Handle: s.console, Doc: "the console server and port"},
		{Method: get, Path: "/entities/{name}/power", Role: read, Params: []string{"at"}, Handle: s.power, Doc: "the PDUs and outlets"},

		{Method: get, Path: "/entities/{name}/history", Role: read, Params: []string{"since", "limit"}, Handle: s.history, Doc: "an entity's changes"},
		{Method: get, Path: "/changes", Role: read, Params: []string{"since", "limit"}, Handle: s.changes, Doc: "the change log"},

		{Method: post, Path: "/ipblocks/{name}/allocate", Role: write, Handle: s.allocateIP, Doc: "hand out addresses from a block"},
		{Method: del, Path: "/ipblocks/{name}/allocations/{address}", Role: write, Handle: s.releaseIP, Doc: "release an address"},
		{Method: get, Path: "/ipblocks/{name}", Role: read, Params: []string{"after", "limit"}, Handle: s.getBlock, Doc: "a block's size, use and allocations"},
		{Method: post, Path: "/racks/{name}/allocate", Role: write, Handle: s.allocateRack, Doc: "place an entity in a rack's free units"},
		{Method: get, Path: "/racks/{name}/elevation", Role: read, Handle: s.elevation, Doc: "every unit of a rack"},
		{Method: post, Path: "/names/{manager}/allocate", Role: write, Handle: s.allocateNames, Doc: "create entities named by a name manager"},

		{Method: get, Path: "/query", Role: read, Params: []string{"q", "limit", "cursor", "at", "explain", "view", "total"}, Cost: heavyQuery, Handle: s.queryGet, Doc: "entities matching a query"},
		{Method: post, Path: "/query", Role: read, Reads: true, Cost: heavyQuery, Handle: s.queryPost, Doc: "entities matching a query given in the body"},
		{Method: post, Path: "/allocate", Role: write, Handle: s.allocateQuery, Doc: "claim entities matching a query"},
		{Method: get, Path: "/export", Role: read, Params: []string{"q"}, Cost: heavyQuery, Handle: s.export, Doc: "the inventory as an inventory file"},

		{Method: post, Path: "/batch", Role: write, Handle: s.batch, Doc: "apply ops in one transaction"},
		{Method: post, Path: "/plan", Role: read, Reads: true, Cost: heavyPlan, Handle: s.plan, Doc: "what applying an inventory file would change"},
		{Method: post, Path: "/apply", Role: write, Handle: s.apply, Doc: "apply an inventory file"},

		{Method: get, Path: "/drivers", Role: read, Handle: s.listDrivers, Doc: "the drivers"},
		{Method: get, Path: "/drivers/{driver}", Role: read, Handle: s.getDriver, Doc: "one driver"},
		{Method: post, Path: "/drivers/reload", Role: admin, Handle: s.reloadDrivers, Doc: "read the drivers file again"},
		{Method: get, Path: "/whoami", Role: read, Handle: s.whoami, Doc: "the caller's token name and role"},
		{Method: get, Path: "/tokens", Role: admin, Handle: s.listTokens, Doc: "list tokens"},
		{Method: post, Path: "/tokens", Role: admin, Handle: s.createToken, Doc: "create a token"},
		{Method: get, Path: "/tokens/audit", Role: admin, Params: []string{"since", "limit"}, Handle: s.tokenAudit, Doc: "who created and revoked which tokens"},
		{Method: del, Path: "/tokens/{token}", Role: admin, Handle: s.revokeToken, Doc: "revoke a token"},
		{Method: post, Path: "/admin/backup", Role: admin, Params: []string{"download"}, Handle: s.backup, Doc: "a consistent snapshot of the live database"},
		{Method: get, Path: "/admin/backups", Role: admin, Handle: s.listBackups, Doc: "the backups in the backup directory"},
		{Method: del, Path: "/admin/backups/{name}", Role: admin, Handle: s.deleteBackup, Doc: "remove a backup from the backup directory"},
	}
}

// register adds a route to the router behind the checks its declaration
// asks for. It refuses, at start-up, a route that changes state (any
// method but GET) with less than the write role, and a public route that
// is not a GET outside the API.
func (s *Server) register(rt route) {
	switch {
	case rt.Public && (rt.Method != http.MethodGet || strings.HasPrefix(rt.Path, APIPrefix)):
		panic(fmt.Sprintf("route %s %s: only GET endpoints outside %s may be public", rt.Method, rt.Path, APIPrefix))
	case !rt.Public && !rt.Role.Valid():
		panic(fmt.Sprintf("route %s %s: no role declared", rt.Method, rt.Path))
	case rt.Reads && rt.Method != http.MethodPost:
		panic(fmt.Sprintf("route %s %s: only POST routes may be marked Reads", rt.Method, rt.Path))
	case !rt.Public && rt.Method != http.MethodGet && !rt.Reads && !rt.Role.Allows(entity.RoleWrite):
		panic(fmt.Sprintf("route %s %s changes state and must need the write or admin role, not %s", rt.Method, rt.Path, rt.Role))
	}
	s.routes = append(s.routes, rt)
	s.router.Handle(rt.fullPath(), s.endpoint(rt)).Methods(rt.Method).Name(rt.Method + " " + rt.fullPath())
}

// endpoint wraps a route's handler: authenticate, check the role, check
// the query parameters, then handle; any error goes to writeError.
func (s *Server) endpoint(rt route) http.Handler {
	path := rt.fullPath()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoOf(r).route = path
		if err := s.guard(rt, r); err != nil {
			s.writeError(w, r, err)
			return
		}
		if rt.Cost != light {
			var done func()
			var err error
			if r, done, err = s.admit(rt, r); err != nil {
				s.writeError(w, r, err)
				return
			}
			defer done()
		}
		if err := rt.Handle(w, r); err != nil {
			s.writeError(w, r, overLimit(r, err))
		}
	})
}

func (s *Server) guard(rt route, r *http.Request) error {
	if !rt.Public {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		infoOf(r).actor, infoOf(r).role = p.Name, p.Role
		if !p.Role.Allows(rt.Role) {
			return entity.Errorf(entity.KindForbidden, "token %q has the %s role; %s %s needs the %s role", p.Name, p.Role, rt.Method, rt.fullPath(), rt.Role).
				With("role", string(p.Role)).With("needs", string(rt.Role))
		}
	}
	if rt.Method != http.MethodGet && len(r.Header.Values("If-None-Match")) > 0 {
		// A precondition the server would not check is refused, not
		// ignored: If-None-Match is answered on reads only (304).
		return entity.Errorf(entity.KindInvalid, "If-None-Match is not supported on %s %s: it is for reads (GET answers 304 when the ETag is unchanged); a write's precondition is If-Match", rt.Method, rt.fullPath())
	}
	for name := range r.URL.Query() {
		if !slices.Contains(rt.Params, name) {
			if len(rt.Params) == 0 {
				return entity.Errorf(entity.KindInvalid, "unknown query parameter %q: %s %s takes none", name, rt.Method, rt.fullPath())
			}
			return entity.Errorf(entity.KindInvalid, "unknown query parameter %q: %s %s takes %s", name, rt.Method, rt.fullPath(), strings.Join(rt.Params, ", "))
		}
	}
	return nil
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, entity.Errorf(entity.KindNotFound, "no endpoint %s %s; the API is under %s (see docs/api.md)", r.Method, r.URL.Path, APIPrefix))
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, rt := range s.routes {
		if rt.Method == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = rt.Method
		var m mux.RouteMatch
		if s.router.Match(probe, &m) && m.MatchErr == nil && !slices.Contains(allowed, rt.Method) {
			allowed = append(allowed, rt.Method)
		}
	}
	slices.Sort(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.writeErrorStatus(w, r, http.StatusMethodNotAllowed, &entity.Error{Kind: entity.KindInvalid,
		Message: fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))})
}
