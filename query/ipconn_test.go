package query_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/query"
)

// A block is connected to the entities holding its addresses, both ways,
// and `via ip` selects exactly those connections.
func TestConnectedThroughIPAllocations(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir()+"/ip.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Update(ctx, "t", func(tx *store.Tx) error {
		for _, n := range []entity.NewEntity{
			{Name: "net", Driver: "ipblock", Attrs: []entity.Attr{{Key: "cidr", Value: entity.String("10.0.3.0/24")}}},
			{Name: "s1", Driver: "server"}, {Name: "s2", Driver: "server"}, {Name: "s3", Driver: "server"}, {Name: "p", Driver: "pool"},
		} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		if _, err := tx.Insert("p", "s3", entity.Placement{}); err != nil {
			return err
		}
		for _, h := range []string{"s1", "s2"} {
			if _, err := tx.AllocateIP(entity.IPRequest{Block: "net", Entity: h}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"driver:server connected to name:net", []string{"s1", "s2"}},
		{"driver:server connected to name:net via ip", []string{"s1", "s2"}},
		{"* connected to name:s1 via ip", []string{"net"}},
		{"* connected to name:s3 via ip", nil},
		{"* connected to name:s3", []string{"p"}},
		{"driver:server connected to name:net via link", nil},
	} {
		res, err := query.Run(ctx, s.Reader(), tc.q, query.Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		var got []string
		for _, m := range res.Results {
			got = append(got, m.Name)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.q, diff)
		}
	}
}
