package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/clusto/clusto/entity"
)

// The cookies: the session (with tokens), or, without tokens, a random
// value the CSRF token is bound to.
const (
	sessionCookie = "clusto_session"
	anonCookie    = "clusto_csrf"
	// csrfField is the form field every state-changing form carries.
	csrfField = "csrf"
)

// viewer is who is looking: a token's name and role, through a session,
// or the anonymous admin of a server without tokens.
type viewer struct {
	Name      string
	Role      entity.Role
	Anonymous bool
	session   string // the session id ("" when anonymous)
	csrf      string // the CSRF token of this session
}

// viewer finds who is looking. Without tokens (and with anonymous access
// allowed) everyone is the anonymous admin, as on the API; otherwise the
// session cookie must name a live session.
func (u *UI) viewer(w http.ResponseWriter, r *http.Request) (*viewer, error) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		tok, err := u.st.Session(r.Context(), c.Value)
		if err == nil {
			return &viewer{Name: tok.Name, Role: tok.Role, session: c.Value, csrf: u.csrfFor(c.Value)}, nil
		}
		if entity.KindOf(err) != entity.KindUnauthorized {
			return nil, err
		}
		u.clearCookie(w, r, sessionCookie)
	}
	has, err := u.st.HasTokens(r.Context())
	if err != nil {
		return nil, err
	}
	if has || !u.opts.AllowAnonymous {
		return nil, entity.Errorf(entity.KindUnauthorized, "log in with a token first")
	}
	bind := ""
	if c, err := r.Cookie(anonCookie); err == nil && len(c.Value) >= 32 {
		bind = c.Value
	} else {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, entity.Internal("make a csrf cookie", err)
		}
		bind = base64.RawURLEncoding.EncodeToString(b)
		u.setCookie(w, r, anonCookie, bind, 0)
	}
	return &viewer{Name: entity.DefaultActor, Role: entity.RoleAdmin, Anonymous: true, csrf: u.csrfFor(bind)}, nil
}

// csrfFor is the CSRF token of a session (or of the anonymous cookie):
// an HMAC of it under a key this process drew at start, so a form from
// another session, another site or before a restart is refused.
func (u *UI) csrfFor(bind string) string {
	m := hmac.New(sha256.New, u.csrfKey)
	m.Write([]byte(bind))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF refuses a form whose CSRF token is not the viewer's.
func (u *UI) checkCSRF(r *http.Request, v *viewer) error {
	got := r.PostFormValue(csrfField)
	if got == "" || !hmac.Equal([]byte(got), []byte(v.csrf)) {
		return entity.Errorf(entity.KindForbidden, "the form's security token is missing or stale (the page was opened in another session, or before the server restarted): reload the page and send it again")
	}
	return nil
}

// setCookie sets a cookie only this server's pages send and no script
// reads; Secure when the browser reached the page over TLS. maxAge 0: for
// the browser's session.
func (u *UI) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: overTLS(r)})
}

func (u *UI) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: overTLS(r)})
}

// overTLS reports whether the browser reached the page over TLS: the
// connection itself, or the reverse proxy in front of clustod (which
// terminates TLS: clustod serves plain HTTP) saying so in
// X-Forwarded-Proto. A client that lies there only changes its own
// cookie's flag.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

// safeNext is where a login goes on to: a path of the interface, never
// another site.
func safeNext(next string) string {
	p, err := url.Parse(next)
	if err != nil || p.IsAbs() || p.Host != "" || !strings.HasPrefix(p.Path, Prefix) || strings.HasPrefix(next, "//") {
		return Prefix
	}
	return p.RequestURI()
}

// GET /ui/login: the token form.
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "login", nil, map[string]any{"Title": "Log in", "Next": safeNext(r.URL.Query().Get("next"))})
}

// POST /ui/login: a token in, a session out. No CSRF token yet (there is
// no session); the origin checks of the server's gate refuse a form
// posted from another site, and SameSite=Strict keeps the cookie from
// being sent by one.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		u.fail(w, r, nil, err)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	secret := strings.TrimSpace(r.PostFormValue("token"))
	id, tok, err := u.st.CreateSession(r.Context(), secret, u.opts.SessionTTL)
	if err != nil {
		status, e := u.opts.Explain(r, err)
		u.render(w, r, status, "login", nil, map[string]any{"Title": "Log in", "Next": next, "Error": e})
		return
	}
	u.opts.Log.Info("ui login", "token", tok.Name, "role", string(tok.Role))
	u.setCookie(w, r, sessionCookie, id, int(u.opts.SessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// POST /ui/logout: the session ends here and now.
func (u *UI) logout(w http.ResponseWriter, r *http.Request, v *viewer) error {
	if err := u.checkCSRF(r, v); err != nil {
		return err
	}
	if v.session != "" {
		if err := u.st.EndSession(r.Context(), v.session); err != nil {
			return err
		}
	}
	u.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	return nil
}
