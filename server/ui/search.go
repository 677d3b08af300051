package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/query"
)

// searchPage is how many matches a page of the search shows.
const searchPage = 100

// searchTotalCap is how far a search counts its matches before it says
// "at least".
const searchTotalCap = 1000

// searchRow is one match as the results table shows it.
type searchRow struct {
	Name, Driver, Kind string
	// Where is the entity's physical parent, if any.
	Where *entity.Relation
	// Groups are the groups it is a member of.
	Groups []string
	// Cols are its values of the chosen attributes, in their order.
	Cols []string
}

// syntaxShow is a query that does not parse, as the CLI shows it: the
// message, then the query with a caret under the mistake.
type syntaxShow struct {
	Message string
	Caret   string
}

// GET /ui/?q=QUERY[&cols=a,b][&cursor=C]: the search, the home page. A
// name, an address, a MAC or a serial (a term without spaces that the
// lookup rules resolve) goes straight to what it names.
func (u *UI) search(w http.ResponseWriter, r *http.Request, v *viewer) error {
	qv := r.URL.Query()
	q := strings.TrimSpace(qv.Get("q"))
	cols := columns(qv.Get("cols"))
	d := map[string]any{"Title": "Search", "Q": q, "Cols": cols, "ColsText": strings.Join(cols, ",")}
	if q == "" {
		u.render(w, r, http.StatusOK, "search", v, d)
		return nil
	}
	d["Title"] = q
	d["JSONURL"] = "/api/v1/query?q=" + url.QueryEscape(q)
	d["CLI"] = "clusto query " + shellQuote(q)
	// One word (names hold no whitespace) is first looked up: a MAC
	// (00:1a:2b:3c:4d:5e) or an IPv6 address holds colons as a query term
	// does, so the lookup decides, not the spelling.
	if !strings.ContainsAny(q, " \t\n") && qv.Get("cursor") == "" {
		matches, err := u.st.Resolve(r.Context(), q)
		if err != nil {
			return err
		}
		if len(matches) == 1 {
			http.Redirect(w, r, entityURL(matches[0].Name), http.StatusSeeOther)
			return nil
		}
		if len(matches) > 1 {
			d["Matches"] = matches
			u.render(w, r, http.StatusOK, "search", v, d)
			return nil
		}
	}
	res, err := query.Run(r.Context(), u.st.Reader(), q, query.Options{Limit: searchPage, Cursor: qv.Get("cursor"), TotalCap: searchTotalCap})
	var se *query.SyntaxError
	if errors.As(err, &se) {
		d["Syntax"] = syntaxShow{Message: se.Message, Caret: entity.Caret(q, se.Line, se.Column)}
		u.render(w, r, http.StatusBadRequest, "search", v, d)
		return nil
	}
	if err != nil {
		return err
	}
	names := make([]string, len(res.Results))
	for i, m := range res.Results {
		names[i] = m.Name
	}
	ents, err := u.st.GetMany(r.Context(), names, 0)
	if err != nil {
		return err
	}
	rows := make([]searchRow, 0, len(ents))
	for _, e := range ents {
		rows = append(rows, rowOf(e, cols))
	}
	d["Rows"], d["Total"], d["AtLeast"] = rows, res.Total, res.TotalAtLeast
	if res.NextCursor != "" {
		next := url.Values{"q": {q}, "cursor": {res.NextCursor}}
		if len(cols) > 0 {
			next.Set("cols", strings.Join(cols, ","))
		}
		d["Next"] = Prefix + "?" + next.Encode()
	}
	u.render(w, r, http.StatusOK, "search", v, d)
	return nil
}

// columns is the chosen attribute columns: status unless others are
// asked for, at most eight, keys only.
func columns(s string) []string {
	if strings.TrimSpace(s) == "" {
		return []string{"status"}
	}
	var out []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c != "" && entity.ValidateKey("column", c) == nil && len(out) < 8 {
			out = append(out, c)
		}
	}
	return out
}

// rowOf is an entity as a row of the results.
func rowOf(e *entity.Entity, cols []string) searchRow {
	row := searchRow{Name: e.Name, Driver: e.Driver, Kind: string(e.Kind)}
	for i := range e.Parents {
		p := &e.Parents[i]
		switch p.Type {
		case entity.Contains:
			if row.Where == nil {
				row.Where = p
			}
		case entity.Member:
			row.Groups = append(row.Groups, p.Name)
		}
	}
	for _, c := range cols {
		var vals []string
		for _, a := range e.Attrs {
			if a.Key == c {
				vals = append(vals, a.Value.Text)
			}
		}
		row.Cols = append(row.Cols, strings.Join(vals, ", "))
	}
	return row
}
