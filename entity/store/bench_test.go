package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// BenchmarkGetCurrent reads one entity (8 attributes, a parent, two links)
// now; the -history variant first gives it 2,000 past versions. The two
// figures show whether history slows current reads.
func BenchmarkGetCurrent(b *testing.B) {
	for _, history := range []int{0, 2000} {
		b.Run(fmt.Sprintf("history-%d", history), func(b *testing.B) {
			s := newStore(b)
			create(b, s, entity.NewEntity{Name: "r1", Driver: "rack"}, entity.NewEntity{Name: "sw1", Driver: "switch"},
				entity.NewEntity{Name: "s1", Driver: "server"})
			write(b, s, func(tx *store.Tx) error {
				for i := 0; i < 8; i++ {
					if _, err := tx.AddAttr("s1", str(fmt.Sprintf("k%d", i), "v")); err != nil {
						return err
					}
				}
				if _, err := tx.Insert("r1", "s1", at(4)); err != nil {
					return err
				}
				if err := tx.Connect(entity.Endpoint{Name: "s1", Port: "eth0"}, entity.Endpoint{Name: "sw1", Port: "1"}); err != nil {
					return err
				}
				return tx.Connect(entity.Endpoint{Name: "s1", Port: "eth1"}, entity.Endpoint{Name: "sw1", Port: "2"})
			})
			write(b, s, func(tx *store.Tx) error {
				for i := 0; i < history; i++ {
					if _, err := tx.SetAttr("s1", entity.AttrSelector{Key: "k0"}, []entity.Value{entity.Int(int64(i))}); err != nil {
						return err
					}
				}
				return nil
			})
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Get(ctx, "s1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreate measures single-entity create transactions (each its own
// BEGIN IMMEDIATE ... COMMIT with fsync) and bulk creates in one transaction.
func BenchmarkCreate(b *testing.B) {
	b.Run("one-per-transaction", func(b *testing.B) {
		s := newStore(b)
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := s.Update(ctx, "bench", func(tx *store.Tx) error {
				return tx.Create(entity.NewEntity{Name: fmt.Sprintf("s%d", i), Driver: "server", Attrs: []entity.Attr{str("status", "new")}})
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bulk", func(b *testing.B) {
		s := newStore(b)
		b.ResetTimer()
		write(b, s, func(tx *store.Tx) error {
			for i := 0; i < b.N; i++ {
				if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("s%d", i), Driver: "server",
					Attrs: []entity.Attr{str("status", "new"), str("serial", fmt.Sprint("SN", i)), num("memory_gb", 64)}}); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
