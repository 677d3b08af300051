package server

import (
	"net/http"
	"strings"

	"github.com/clusto/clusto/entity"
)

// principal is who a request acts as: a token's name and role.
type principal struct {
	Name string
	Role entity.Role
}

// authenticate reads the bearer token. A request without one is served as
// "anonymous" with every role only when the server allows anonymous access
// and no token exists yet; otherwise it is unauthorized.
func (s *Server) authenticate(r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if s.opts.AllowAnonymous {
			has, err := s.store.HasTokens(r.Context())
			if err != nil {
				return principal{}, err
			}
			if !has {
				return principal{Name: entity.DefaultActor, Role: entity.RoleAdmin}, nil
			}
		}
		return principal{}, entity.Errorf(entity.KindUnauthorized, "this server needs a token: send Authorization: Bearer TOKEN (clustod token create NAME --role read|write|admin makes one)")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return principal{}, entity.Errorf(entity.KindUnauthorized, "the Authorization header must be \"Bearer TOKEN\"")
	}
	tok, err := s.store.Authenticate(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return principal{}, err
	}
	return principal{Name: tok.Name, Role: tok.Role}, nil
}
