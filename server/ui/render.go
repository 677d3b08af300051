package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clusto/clusto/entity"
)

// pageData is what every template sees: the page's own data in D.
type pageData struct {
	Title   string
	V       *viewer
	CSRF    string
	Version string
	Path    string
	D       any
}

// parseTemplates reads every page: the layout with the page's file, so
// that each page defines its title and content blocks. A file whose name
// starts with _ is a fragment (a part of a page fetched on its own).
func (u *UI) parseTemplates() error {
	files, err := templateFiles.ReadDir("templates")
	if err != nil {
		return err
	}
	// Every file whose name starts with "parts" holds parts shared by the
	// pages (parts.html; parts_racks.html: the elevation, the tree).
	shared := []string{"templates/layout.html"}
	for _, f := range files {
		if strings.HasPrefix(f.Name(), "parts") {
			shared = append(shared, "templates/"+f.Name())
		}
	}
	u.pages = map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(f.Name(), ".html")
		if name == "layout" || strings.HasPrefix(name, "parts") {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFiles, append(shared, "templates/"+f.Name())...)
		if err != nil {
			return fmt.Errorf("ui: template %s: %w", f.Name(), err)
		}
		u.pages[name] = t
	}
	return nil
}

// render answers a page (or a fragment) with status. It executes into a
// buffer first, so that a template failure is an error page, not half a
// page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, v *viewer, d any) {
	t, ok := u.pages[name]
	if !ok {
		u.opts.Log.Error("ui: no such template", "template", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	data := pageData{V: v, Version: u.opts.Version, Path: r.URL.RequestURI(), D: d}
	if m, ok := d.(map[string]any); ok {
		if s, ok := m["Title"].(string); ok {
			data.Title = s
		}
	}
	if v != nil {
		data.CSRF = v.csrf
	}
	root := "layout"
	if strings.HasPrefix(name, "_") {
		root = "fragment"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, root, data); err != nil {
		u.opts.Log.Error("ui: render", "template", name, "err", err)
		http.Error(w, "internal error: the page could not be drawn", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// funcs are the helpers templates use; every one returns text that
// html/template escapes, or a URL it checks.
var funcs = template.FuncMap{
	"entityURL":  entityURL,
	"entityAt":   entityAt,
	"thingURL":   thingURL,
	"searchURL":  func(q string) string { return Prefix + "?q=" + url.QueryEscape(q) },
	"rackURL":    rackURL,
	"blockURL":   blockURL,
	"rowURL":     rowURL,
	"sitesURL":   sitesURL,
	"count":      thousands,
	"percent":    percent,
	"when":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"value":      func(v entity.Value) string { return v.Text },
	"join":       strings.Join,
	"shellQuote": shellQuote,
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"canWrite": func(v *viewer) bool { return v != nil && v.Role.Allows(entity.RoleWrite) },
}

// shellQuote quotes s for a POSIX shell, as the command line shown beside
// a search must be pasted as it is.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// The pages' addresses, for templates and handlers alike.

func entityURL(name string) string { return Prefix + "entity?name=" + url.QueryEscape(name) }

func entityAt(name string, at int64) string {
	return entityURL(name) + "&at=" + strconv.FormatInt(at, 10)
}

func rackURL(name string) string  { return Prefix + "rack?name=" + url.QueryEscape(name) }
func blockURL(name string) string { return Prefix + "block?name=" + url.QueryEscape(name) }
func rowURL(name string) string   { return Prefix + "row?name=" + url.QueryEscape(name) }
func sitesURL(name string) string { return Prefix + "sites?open=" + url.QueryEscape(name) }
