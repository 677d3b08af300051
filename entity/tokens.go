package entity

import (
	"regexp"
	"time"
)

// Role is what an API token may do. Each role can do what the ones before
// it can: read reads, write also changes the inventory, admin also manages
// tokens and drivers.
type Role string

// The roles, weakest first.
const (
	RoleRead  Role = "read"
	RoleWrite Role = "write"
	RoleAdmin Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a token of role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.Valid() && need.Valid() && r.rank() >= need.rank() }

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", Errorf(KindInvalid, "role %q must be read, write or admin", s)
	}
	return r, nil
}

// Token is an API token as listed: never its secret.
type Token struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// tokenNameRE is what a token name may be: what fits in a log line and a URL path.
var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// TokenPrefix starts every token, so that a leaked one is recognisable.
const TokenPrefix = "clusto_"

// ValidateTokenName checks a token name: it is recorded as the actor of every
// change made with the token, so it is short and plain: a letter or digit,
// then letters, digits, '_', '.', '@' or '-', at most 64 characters.
func ValidateTokenName(name string) error {
	if !tokenNameRE.MatchString(name) {
		if name == "" {
			return Errorf(KindInvalid, "token name is empty")
		}
		return Errorf(KindInvalid, "token name %q must start with a letter or digit and hold only letters, digits, '_', '.', '@' or '-' (at most 64)", name)
	}
	if name == DefaultActor {
		return Errorf(KindInvalid, "token name %q is reserved for unauthenticated writes", name)
	}
	return nil
}

// Caller is who creates or revokes a token, as the token audit list
// records it.
type Caller struct {
	// Actor is the name of the token the request was made with
	// (DefaultActor without one), or "clustod/USER" for the clustod
	// command line run by the operating-system user USER. Token names
	// hold no '/', so the two cannot be confused.
	Actor string
	// RequestID is the API request's id, under which the access log has
	// it; empty on the command line.
	RequestID string
}

// The actions of the token audit list.
const (
	TokenCreated = "create"
	TokenRevoked = "revoke"
)

// TokenEvent is one entry of the token audit list: a token made or
// revoked. It holds the token's name and role, never its secret or hash.
type TokenEvent struct {
	// ID numbers the events in order; it is the paging key.
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Token     string    `json:"token"`
	Role      Role      `json:"role"`
	RequestID string    `json:"request_id,omitempty"`
}
