package schema_test

import (
	"testing"

	"github.com/clusto/clusto/schema"
)

func TestMigrationsAreOrdered(t *testing.T) {
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Version != i+1 || m.SQL == "" {
			t.Errorf("migration %d: %+v", i, m.Name)
		}
	}
}
