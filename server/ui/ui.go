// Package ui is clustod's web interface, served under /ui/: server-rendered
// pages (html/template, embedded with the static files; no build step)
// over the same store and query packages as the JSON API. It holds no SQL
// and no rule of its own: it reads through the store and the query
// compiler and writes through the store's single writer, so that the
// rules at commit apply to its edits as to any other.
//
// Who is looking: with tokens, a browser logs in once with a token and
// then holds a session (store.CreateSession) in an HttpOnly, SameSite=Strict
// cookie; the session acts as the token, with its name in the change log
// and its role. Without tokens (a loopback-only server) the UI works
// without a login, as the API does. Every state-changing form carries a
// CSRF token bound to the session (csrf.go); every page is sent with a
// strict Content-Security-Policy (no inline script or style).
package ui

import (
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// Prefix is where the interface lives.
const Prefix = "/ui/"

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Options configure the interface.
type Options struct {
	// AllowAnonymous serves without a login while no token exists (the
	// server then answers loopback only, as for the API).
	AllowAnonymous bool
	// Explain is the server's one mapping of an error to a status and a
	// user-facing error (internal errors logged, told only a request id).
	Explain func(r *http.Request, err error) (int, *entity.Error)
	// Log receives what the interface itself has to say.
	Log *slog.Logger
	// SessionTTL is how long a login lasts; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// Version is shown in the footer.
	Version string
	// Identify, when set, is told who each page's viewer is (the server's
	// access log records the actor, as for API requests).
	Identify func(r *http.Request, actor string, role entity.Role)
}

// DefaultSessionTTL is how long a login lasts unless Options say.
const DefaultSessionTTL = 12 * time.Hour

// UI is the web interface's handler.
type UI struct {
	st      *store.Store
	opts    Options
	pages   map[string]*template.Template
	csrfKey []byte
	mux     *http.ServeMux
	// siteLevels caches the sites tree for the newest change (sites.go).
	siteLevels siteCache
}

// New builds the interface over st.
func New(st *store.Store, opts Options) (*UI, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.Explain == nil {
		return nil, fmt.Errorf("ui: Options.Explain is required")
	}
	u := &UI{st: st, opts: opts, csrfKey: make([]byte, 32), mux: http.NewServeMux()}
	if _, err := rand.Read(u.csrfKey); err != nil {
		return nil, fmt.Errorf("ui: csrf key: %w", err)
	}
	if err := u.parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	u.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", staticHandler(static)))
	st.OnCommit(u.siteLevels.invalidate)
	u.routes()
	return u, nil
}

// ServeHTTP serves every page, with the security headers every answer of
// the interface carries.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows the page's own scripts, styles and images
// and nothing else: no inline script or style, no frames, no forms posted
// elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// staticHandler serves the embedded files, cached for a day (their names
// do not change between builds, so not for longer).
func staticHandler(files fs.FS) http.Handler {
	fsrv := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fsrv.ServeHTTP(w, r)
	})
}

// handler is a page: it returns an error for the error page, or nil when
// it has answered.
type handler func(w http.ResponseWriter, r *http.Request, v *viewer) error

// page registers a handler for pattern (a net/http pattern with method)
// behind the viewer check: a request without a login, where one is
// needed, is sent to the login page.
func (u *UI) page(pattern string, h handler) {
	u.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := readForm(w, r); err != nil {
			u.fail(w, r, nil, err)
			return
		}
		v, err := u.viewer(w, r)
		if err != nil {
			if entity.KindOf(err) == entity.KindUnauthorized && r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			u.fail(w, r, nil, err)
			return
		}
		if u.opts.Identify != nil {
			u.opts.Identify(r, v.Name, v.Role)
		}
		if err := h(w, r, v); err != nil {
			u.fail(w, r, v, err)
		}
	})
}

// maxFormBytes bounds a form: the interface's forms are a few fields.
const maxFormBytes = 64 << 10

// readForm reads a POST's form, refusing one larger than maxFormBytes or
// not a form, before anything looks at it (a GET has none).
func readForm(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return entity.Errorf(entity.KindTooLarge, "the form is larger than %d KiB; the interface's forms are a few fields", maxFormBytes>>10)
		}
		return entity.Errorf(entity.KindInvalid, "the form could not be read: send it as a browser does (application/x-www-form-urlencoded)")
	}
	return nil
}

// fail shows the error page for err, with the status the server's one
// mapping gives it.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, v *viewer, err error) {
	status, e := u.opts.Explain(r, err)
	u.render(w, r, status, "error", v, map[string]any{"Title": http.StatusText(status), "Status": status, "Error": e})
}
