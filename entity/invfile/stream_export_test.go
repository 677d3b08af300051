package invfile

import (
	"context"
	"testing"

	"github.com/clusto/clusto/entity/store"
)

// The windowed import's internals, for its tests in invfile_test.

// SplitsIntoWindows tells whether a file can be read a window at a time.
func SplitsIntoWindows(data []byte) bool {
	_, ok := splitEntities(data)
	return ok
}

// ImportInWindows imports a file a window at a time; it fails with
// ErrWholeDocument where Import would fall back to the whole document.
func ImportInWindows(ctx context.Context, s *store.Store, data []byte, opts ImportOptions) (Summary, error) {
	lay, ok := splitEntities(data)
	if !ok {
		return Summary{}, ErrWholeDocument
	}
	return importWindows(ctx, s, "inv.yaml", data, lay, opts)
}

// ImportWhole imports a file the whole-document way.
func ImportWhole(ctx context.Context, s *store.Store, data []byte, opts ImportOptions) (Summary, error) {
	return importWhole(ctx, s, "inv.yaml", data, opts)
}

// ErrWholeDocument is ImportInWindows' error for a file it must read whole.
var ErrWholeDocument = errWholeDocument

// SetWindows sets the windows' sizes until the test ends.
func SetWindows(t *testing.T, entities, ops int) {
	ie, io := importWindow, opWindow
	importWindow, opWindow = entities, ops
	t.Cleanup(func() { importWindow, opWindow = ie, io })
}
