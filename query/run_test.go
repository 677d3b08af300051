package query

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// TestPagination walks every page of a query with the cursor and checks
// the pages join up to the whole result, each with the full total.
func TestPagination(t *testing.T) {
	st, before := fixture(t)
	ctx := context.Background()
	db := st.Reader()
	// Plain statements (page, then count) and statements driven by a
	// relation or a group (page and count in one).
	for _, text := range []string{"*", "driver:server", "* in name:datacenterZ", "pool:legacy", "* connected to name:server1"} {
		for _, at := range []int64{0, before} {
			all, err := Run(ctx, db, text, Options{At: at, Limit: MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			n := len(all.Results)
			for _, limit := range []int{1, 2, 3, 7, max(1, n-1), n, n + 1} {
				var got []string
				cursor := ""
				pages := 0
				for {
					res, err := Run(ctx, db, text, Options{At: at, Limit: limit, Cursor: cursor})
					if err != nil {
						t.Fatalf("%s: limit %d page %d: %v", text, limit, pages, err)
					}
					pages++
					if res.Total != all.Total {
						t.Errorf("%s: limit %d page %d: total %d, want %d", text, limit, pages, res.Total, all.Total)
					}
					if len(res.Results) > limit {
						t.Errorf("%s: limit %d page %d: %d results", text, limit, pages, len(res.Results))
					}
					got = append(got, names(res.Results)...)
					if res.NextCursor == "" {
						break
					}
					cursor = res.NextCursor
				}
				if diff := cmp.Diff(names(all.Results), got); diff != "" {
					t.Errorf("%s at %d, limit %d: pages join to a different list (-want +got):\n%s", text, at, limit, diff)
				}
				if wantPages := max(1, (n+limit-1)/limit); pages != wantPages {
					t.Errorf("%s at %d, limit %d: %d pages, want %d", text, at, limit, pages, wantPages)
				}
			}
			// A cursor past the last match: an empty page, the same total.
			res, err := Run(ctx, db, text, Options{At: at, Cursor: encodeCursor("~")})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Results) != 0 || res.Total != all.Total || res.NextCursor != "" {
				t.Errorf("%s past the end: %d results, total %d (want %d), cursor %q", text, len(res.Results), res.Total, all.Total, res.NextCursor)
			}
		}
	}
	// No match at all, both ways.
	for _, text := range []string{"name:nosuch", "* in name:nosuch"} {
		res, err := Run(ctx, db, text, Options{})
		if err != nil || len(res.Results) != 0 || res.Total != 0 || res.Results == nil {
			t.Errorf("%s: %+v, %v", text, res, err)
		}
	}
}

func TestDefaultAndMaxLimit(t *testing.T) {
	st, _ := fixture(t)
	ctx := context.Background()
	// Enough entities for the default page to be full.
	err := st.Update(ctx, "test", func(tx *store.Tx) error {
		for i := 0; i < DefaultLimit+5; i++ {
			if err := tx.Create(entity.NewEntity{Name: "extra" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Driver: "server"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, st.Reader(), "name:extra*", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != DefaultLimit || res.Total != DefaultLimit+5 || res.NextCursor == "" {
		t.Errorf("default limit: %d results, total %d, cursor %q", len(res.Results), res.Total, res.NextCursor)
	}
	q, _ := Parse("*")
	c, err := Compile(q, Options{Limit: MaxLimit * 10})
	if err != nil {
		t.Fatal(err)
	}
	if c.Limit() != MaxLimit {
		t.Errorf("limit %d: got %d, want it capped at %d", MaxLimit*10, c.Limit(), MaxLimit)
	}
}

func TestOptionErrors(t *testing.T) {
	st, _ := fixture(t)
	ctx := context.Background()
	tests := []struct {
		opts Options
		kind entity.ErrorKind
		msg  string
	}{
		{Options{At: -1}, entity.KindInvalid, "change number -1 must not be negative"},
		{Options{Limit: -1}, entity.KindInvalid, "limit -1 must not be negative"},
		{Options{Cursor: "not base64!"}, entity.KindInvalid, "invalid cursor"},
		{Options{Cursor: encodeCursor("x")[1:]}, entity.KindInvalid, "invalid cursor"},
		{Options{Cursor: "bmFtZQ"}, entity.KindInvalid, "invalid cursor"}, // "name": no tag
		{Options{Cursor: "bjE6"}, entity.KindInvalid, "invalid cursor"},   // "n1:": no name
	}
	for _, tc := range tests {
		_, err := Run(ctx, st.Reader(), "*", tc.opts)
		var e *entity.Error
		if !errors.As(err, &e) || e.Kind != tc.kind || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("Run(%+v): got %v, want %s error containing %q", tc.opts, err, tc.kind, tc.msg)
		}
	}
}

// TestQueryers runs queries on every kind of store.Reader: the read pool, a
// View, and a write transaction that sees its own uncommitted edits.
func TestQueryers(t *testing.T) {
	st, _ := fixture(t)
	ctx := context.Background()
	runOn := func(name string, db store.Reader) {
		t.Helper()
		res, err := Run(ctx, db, "pool:prod", Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff([]string{"server1", "server5", "web"}, names(res.Results)); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", name, diff)
		}
	}
	runOn("pool", st.Reader())
	if err := st.View(ctx, func(v *store.View) error { runOn("view", v); return nil }); err != nil {
		t.Fatal(err)
	}
	err := st.Update(ctx, "test", func(tx *store.Tx) error {
		if _, err := tx.Insert("web", "server4", entity.Placement{}); err != nil {
			return err
		}
		rd, err := tx.Reader()
		if err != nil {
			return err
		}
		res, err := Run(ctx, rd, "pool:prod", Options{})
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"server1", "server4", "server5", "web"}, names(res.Results)); diff != "" {
			t.Errorf("in the write transaction: (-want +got):\n%s", diff)
		}
		// The allocation path: ids in name order from the compiled query.
		q, err := Parse("pool:prod and driver:server")
		if err != nil {
			return err
		}
		c, err := Compile(q, Options{})
		if err != nil {
			return err
		}
		s, args := c.IDs()
		rows, err := rd.QueryContext(ctx, s, args...)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		// Closed before the transaction's next statement, not deferred
		// past it.
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var want []int64
		for _, n := range []string{"server1", "server4", "server5"} {
			var id int64
			if err := rd.QueryRowContext(ctx, "SELECT id FROM entities WHERE name = ? AND until IS NULL", n).Scan(&id); err != nil {
				return err
			}
			want = append(want, id)
		}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("IDs: (-want +got):\n%s", diff)
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatal(err)
	}
	// Rolled back: the read pool never saw it.
	res, err := Run(ctx, st.Reader(), "pool:prod", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"server1", "server5", "web"}, names(res.Results)); diff != "" {
		t.Errorf("after rollback: (-want +got):\n%s", diff)
	}
}

// TestExplain checks the SQL Explain returns: every value is a parameter,
// the current form reads `x.until IS NULL`, and the as-of form has the
// same shape with the visibility condition in its place.
func TestExplain(t *testing.T) {
	text := `driver:server attr:status,"un'allocated" in name:"x'; DROP TABLE entities; --" or pool:web connected to ip:10.0.0.0/8 via nic`
	cur, curArgs, err := Explain(text, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old, oldArgs, err := Explain(text, Options{At: 42})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cur, old} {
		for _, user := range []string{"server", "un'allocated", "DROP", "web", "nic", "10.0"} {
			if strings.Contains(s, user) {
				t.Errorf("user text %q reached the SQL text:\n%s", user, s)
			}
		}
	}
	if !strings.Contains(cur, "e.until IS NULL") || strings.Contains(cur, "since") {
		t.Errorf("current SQL must read until IS NULL and no history:\n%s", cur)
	}
	for _, v := range []string{"server", "un'allocated", "x'; DROP TABLE entities; --", "web", "nic"} {
		if !containsArg(curArgs, v) || !containsArg(oldArgs, v) {
			t.Errorf("value %q is not a parameter: %v / %v", v, curArgs, oldArgs)
		}
	}
	// Replacing each alias's as-of condition with the current one gives
	// back the current statement exactly.
	back := old
	for _, a := range aliases(cur) {
		v, _ := store.Visible(a, 42)
		back = strings.ReplaceAll(back, v, a+".until IS NULL")
	}
	if back != cur {
		t.Errorf("as-of SQL is not the current SQL with another visibility condition:\n%s\n---\n%s", cur, back)
	}
	if strings.Count(old, "?") != len(oldArgs) || strings.Count(cur, "?") != len(curArgs) {
		t.Errorf("placeholders and arguments differ in number")
	}
	// The statement runs.
	st, _ := fixture(t)
	rows, err := st.Reader().QueryContext(context.Background(), cur, curArgs...)
	if err != nil {
		t.Errorf("explained statement fails: %v", err)
	} else {
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("explained statement fails while reading its rows: %v", err)
		}
		if err := rows.Close(); err != nil {
			t.Errorf("closing the explained statement's rows: %v", err)
		}
	}
	plan, err := Plan(context.Background(), st.Reader(), text, Options{})
	if err != nil || len(plan) == 0 {
		t.Errorf("Plan: %v, %q", err, plan)
	}
}

func containsArg(args []any, v string) bool {
	for _, a := range args {
		if a == v {
			return true
		}
	}
	return false
}

// aliases lists the table aliases that have a visibility condition in s.
func aliases(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		if a, ok := strings.CutSuffix(f, ".until"); ok {
			out = append(out, strings.TrimLeft(a, "("))
		}
	}
	return out
}

var _ store.Reader = (*sql.DB)(nil)
var _ store.Reader = (*sql.Conn)(nil)
var _ store.Reader = (*sql.Tx)(nil)
