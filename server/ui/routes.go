package ui

import "net/http"

// routes lists every page. Reads are GETs; everything that changes state
// is a POST form that checks its CSRF token.
func (u *UI) routes() {
	u.mux.HandleFunc("GET "+Prefix+"login", u.loginPage)
	u.mux.HandleFunc("POST "+Prefix+"login", u.login)
	u.page("POST "+Prefix+"logout", u.logout)
	u.page("GET "+Prefix+"{$}", u.search)
	u.page("GET "+Prefix+"entity", u.entity)
	u.page("GET "+Prefix+"changes", u.changes)
	u.editRoutes()
	u.page("GET "+Prefix+"sites", u.sites)
	u.page("GET "+Prefix+"rack", u.rack)
	u.page("GET "+Prefix+"row", u.row)
	u.page("GET "+Prefix+"block", u.block)
	u.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		v, _ := u.viewer(w, r)
		u.render(w, r, http.StatusNotFound, "error", v, map[string]any{"Title": "Not found", "Status": http.StatusNotFound,
			"Message": "There is no page " + r.URL.Path + " here."})
	})
}
