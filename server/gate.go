package server

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/server/ui"
)

// The gate is what every request passes before it is routed, whatever its
// endpoint. A web page the operator opens can make the browser send
// requests to the server (a form posted to http://127.0.0.1:8642, a fetch
// to a name of the attacker's that re-resolves to 127.0.0.1); the browser
// says where such a request comes from, and the gate refuses those from
// any origin but the server's own. Programs (curl, the CLI, the Go client)
// send no Origin and no Sec-Fetch-Site, and pass.

// gate refuses a request that fails any of checkRequest's checks before it
// reaches the router.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkRequest(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkRequest is every check of the gate, in order: who may be talking
// to the server comes first, then what the request carries.
func (s *Server) checkRequest(r *http.Request) error {
	if s.opts.AllowAnonymous {
		if err := checkLoopbackHost(r); err != nil {
			return err
		}
	}
	if err := s.checkOrigin(r); err != nil {
		return err
	}
	if strings.HasPrefix(r.URL.Path, ui.Prefix) {
		// The web interface's forms are sent as browsers send forms.
		if err := checkFormType(r); err != nil {
			return err
		}
	} else if err := checkContentType(r); err != nil {
		return err
	}
	return checkQuery(r.URL.RawQuery)
}

// checkLoopbackHost refuses, on a server that serves without tokens, a
// request addressed to it by any name but a loopback one. DNS rebinding
// works through names: a page at http://evil.example:8642 whose name is
// made to resolve to 127.0.0.1 is, to the browser, its own origin, and
// only the Host header, evil.example:8642, gives it away. An address
// literal cannot be rebound, so a loopback address, and the address the
// connection came in on (a server started with --insecure on another
// address), are accepted as well as the name localhost.
func checkLoopbackHost(r *http.Request) error {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.IsLoopback() {
			return nil
		}
		if local, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
			if lip, ok := netip.AddrFromSlice(local.IP); ok && lip.Unmap() == ip.WithZone("") {
				return nil
			}
		}
	}
	return entity.Errorf(entity.KindForbidden, "this server has no API token yet and so answers only requests addressed to localhost or a loopback address (127.0.0.1, [::1]), not to Host %q: a web page under another name must not reach it (DNS rebinding). Address it as localhost or 127.0.0.1, or create a token (clustod token create NAME --role admin)", clip(r.Host)).
		WithCode(reasonHostNotAllowed).With("host", clip(r.Host))
}

// checkOrigin refuses a request a browser sent from a page of another
// origin. Origin, when present, must be the server's own (scheme and Host
// of the request) or one of Options.AllowedOrigins; a browser sends it
// with every request but same-origin GETs. Without it, Sec-Fetch-Site
// decides: same-origin and none (the user typed the address) pass,
// cross-site does not, and neither does same-site, which is another
// origin of the same site, such as another port of 127.0.0.1. The answer
// is a plain 403: there are no CORS headers, so a page elsewhere cannot
// read anything from this server either.
func (s *Server) checkOrigin(r *http.Request) error {
	origins := r.Header.Values("Origin")
	if len(origins) > 1 {
		return entity.Errorf(entity.KindForbidden, "the request has %d Origin headers; a browser sends one", len(origins)).WithCode(reasonCrossOrigin)
	}
	own := ownOrigin(r)
	if len(origins) == 1 {
		o, err := ParseOrigin(origins[0])
		if err == nil && (o == own || slices.Contains(s.opts.AllowedOrigins, o)) {
			return nil
		}
		return entity.Errorf(entity.KindForbidden, "the request comes from a web page of another origin (Origin %q); this server answers only its own origin, %s%s", clip(origins[0]), own, s.allowedList()).
			WithCode(reasonCrossOrigin).With("origin", clip(origins[0]))
	}
	site := r.Header.Get("Sec-Fetch-Site")
	switch strings.ToLower(site) {
	case "", "same-origin", "none":
		return nil
	case "cross-site", "same-site":
		from := "another site"
		if strings.EqualFold(site, "same-site") {
			from = "another origin of the same site (another port or subdomain)"
		}
		return entity.Errorf(entity.KindForbidden, "the request comes from a web page of %s (Sec-Fetch-Site: %s); this server answers only its own origin, %s%s", from, site, own, s.allowedList()).
			WithCode(reasonCrossOrigin).With("sec_fetch_site", site)
	}
	return entity.Errorf(entity.KindForbidden, "Sec-Fetch-Site %q is not one a browser sends (same-origin, same-site, cross-site or none)", clip(site)).WithCode(reasonCrossOrigin)
}

// allowedList names the extra origins in a refusal, so that an operator
// behind a proxy sees what is configured.
func (s *Server) allowedList() string {
	if len(s.opts.AllowedOrigins) == 0 {
		return " (clustod serve --allow-origin adds others, such as that of a reverse proxy in front of it)"
	}
	return ", or " + strings.Join(s.opts.AllowedOrigins, ", ")
}

// ownOrigin is the origin the request was addressed to: http or https and
// its Host, without the scheme's default port, as browsers write it.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + withoutDefaultPort(scheme, strings.ToLower(r.Host))
}

func withoutDefaultPort(scheme, host string) string {
	if scheme == "http" {
		return strings.TrimSuffix(host, ":80")
	}
	return strings.TrimSuffix(host, ":443")
}

// ParseOrigin checks a web origin, scheme://host[:port] with scheme http
// or https and nothing after the port, and returns it as browsers send it
// in Origin: lower case, without the scheme's default port. "null" (what a
// sandboxed or file:// page sends) is not an origin.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	bad := err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Host, ":")
	if bad {
		return "", fmt.Errorf("origin %q must be http:// or https:// and a host, with an optional port and nothing after it (such as https://clusto.example.net)", s)
	}
	scheme := strings.ToLower(u.Scheme)
	return scheme + "://" + withoutDefaultPort(scheme, strings.ToLower(u.Host)), nil
}

// jsonType is the one media type of request bodies.
const jsonType = "application/json"

// checkContentType refuses a body that is not declared JSON. A form or a
// text/plain body is what a web page can send without the browser asking
// the server first (a CORS "simple request"); a JSON body cannot be sent
// that way, so requiring it closes that door whatever the origin checks
// decide. An empty body with no Content-Type passes: a DELETE, or a POST
// that takes no body.
func checkContentType(r *http.Request) error {
	cts := r.Header.Values("Content-Type")
	if len(cts) == 0 {
		if r.ContentLength == 0 {
			return nil
		}
		return entity.Errorf(entity.KindUnsupportedMedia, "the request has a body but no Content-Type; send it as Content-Type: %s", jsonType).
			With("needs", jsonType)
	}
	if len(cts) > 1 {
		return entity.Errorf(entity.KindUnsupportedMedia, "the request has %d Content-Type headers; send one, Content-Type: %s", len(cts), jsonType).
			With("needs", jsonType)
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil {
		return entity.Errorf(entity.KindUnsupportedMedia, "Content-Type %q is not a media type; send Content-Type: %s", clip(cts[0]), jsonType).
			With("sent", clip(cts[0])).With("needs", jsonType)
	}
	if mt != jsonType {
		return entity.Errorf(entity.KindUnsupportedMedia, "the request is sent as %s; this API takes only %s (send Content-Type: %s)", clip(mt), jsonType, jsonType).
			With("sent", clip(mt)).With("needs", jsonType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return entity.Errorf(entity.KindUnsupportedMedia, "the request body is declared as charset %s; it must be UTF-8 (send Content-Type: %s, or charset=utf-8)", clip(cs), jsonType).
			With("sent", clip(cts[0])).With("needs", jsonType)
	}
	return nil
}

// checkFormType refuses a request to the web interface with a body that
// is not a form (application/x-www-form-urlencoded).
func checkFormType(r *http.Request) error {
	cts := r.Header.Values("Content-Type")
	if len(cts) == 0 {
		if r.ContentLength == 0 {
			return nil
		}
		return entity.Errorf(entity.KindUnsupportedMedia, "the request has a body but no Content-Type; the web interface takes forms (%s)", formType)
	}
	mt, _, err := mime.ParseMediaType(cts[0])
	if len(cts) > 1 || err != nil || mt != formType {
		return entity.Errorf(entity.KindUnsupportedMedia, "the web interface takes forms (%s), not %q", formType, clip(cts[0])).With("needs", formType)
	}
	return nil
}

// formType is the media type of an HTML form.
const formType = "application/x-www-form-urlencoded"

// checkQuery refuses a query string that r.URL.Query() would read only in
// part: it silently drops a pair that is not correctly %-escaped or holds
// a ';', so that ?%zz=1&cascade=true would lose a parameter without a word.
// Keys and values must also be UTF-8 once unescaped, as bodies must.
func checkQuery(raw string) error {
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		if strings.Contains(part, ";") {
			return entity.Errorf(entity.KindInvalid, "query string part %q holds ';'; separate parameters with '&' and write a ';' in a value as %%3B", clip(part))
		}
		k, v, _ := strings.Cut(part, "=")
		for _, s := range []string{k, v} {
			u, err := url.QueryUnescape(s)
			if err != nil {
				msg := strings.TrimPrefix(err.Error(), "url: ")
				return entity.Errorf(entity.KindInvalid, "query string part %q is not correctly %%-escaped (%s); write a '%%' itself as %%25", clip(part), msg)
			}
			if !utf8.ValidString(u) {
				return entity.Errorf(entity.KindInvalid, "query string part %q is not valid UTF-8 once unescaped", clip(part))
			}
		}
	}
	return nil
}

// clip shortens what a client sent for quoting in a message.
func clip(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
