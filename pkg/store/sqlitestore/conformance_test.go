package sqlitestore

import (
	"path/filepath"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/storetest"
)

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Name: "sqlite-file",
		New: func(t *testing.T) (store.Store, string) {
			return New(), filepath.Join(t.TempDir(), "log.db")
		},
		Reopen: func(t *testing.T, config string) store.Store { return New() },
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Name: "sqlite-memory",
		New:  func(t *testing.T) (store.Store, string) { return New(), MemoryConfig },
	})
}

func TestRegistered(t *testing.T) {
	s, err := store.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatalf("store.Open(sqlite::memory:): %v", err)
	}
	defer s.Close()
	if _, ok := s.(*Store); !ok {
		t.Fatalf("store.Open returned %T, want *sqlitestore.Store", s)
	}
}
