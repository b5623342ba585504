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

// TestCloseRaceProcesses closes segments from several processes on one
// database file; the segments must still partition every stream.
func TestCloseRaceProcesses(t *testing.T) {
	storetest.RunProcessRace(t, storetest.ProcessRace{
		New: func() store.Store { return New() }, Config: filepath.Join(t.TempDir(), "race.db"),
		ChildTest: "TestCloseRaceChild", Procs: 3, Workers: 2, Appends: 20,
	})
}

// TestCloseRaceChild is a child process of TestCloseRaceProcesses (it does
// nothing when run on its own).
func TestCloseRaceChild(t *testing.T) {
	storetest.RunRaceChild(t, func() store.Store { return New() })
}
