package query

import (
	"context"
	"database/sql"

	"fmt"
	"github.com/clusto/clusto/schema"
	"os"
	"strings"
	"testing"
	"time"
)

func TestEQP(t *testing.T) {
	path := os.Getenv("EQP_SQL")
	if path == "" {
		t.Skip()
	}
	sdb, err := schema.Open(context.Background(), os.Getenv("EQP_DB"), schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db := sdb.Read
	var _ *sql.DB = db
	b, _ := os.ReadFile(path)
	for _, q := range strings.Split(string(b), "\n;;\n") {
		q = strings.TrimSpace(q)
		if q == "" {
			continue
		}
		var args []any
		if strings.HasPrefix(q, "Q:") {
			var err error
			q, args, err = Explain(strings.TrimSpace(q[2:]), Options{})
			if err != nil {
				t.Fatal(err)
			}
			fmt.Println(q, args)
		}
		fmt.Println("=====", strings.SplitN(q, "\n", 2)[0])
		rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			fmt.Println("ERR", err)
			continue
		}
		depth := map[int]int{}
		for rows.Next() {
			var id, parent, x int
			var d string
			rows.Scan(&id, &parent, &x, &d)
			depth[id] = depth[parent] + 1
			fmt.Println(strings.Repeat("  ", depth[id]) + d)
		}
		rows.Close()
		if os.Getenv("EQP_RUN") != "" {
			for i := 0; i < 5; i++ {
				t0 := time.Now()
				rows, err := db.Query(q, args...)
				if err != nil {
					fmt.Println("ERR", err)
					break
				}
				n := 0
				for rows.Next() {
					n++
				}
				rows.Close()
				fmt.Printf("  %d rows in %v\n", n, time.Since(t0))
			}
		}
	}
}
