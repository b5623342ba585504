package filestore

import (
	"path/filepath"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Name: "file",
		New: func(t *testing.T) (store.Store, string) {
			return New(), filepath.Join(t.TempDir(), "log.jsonl")
		},
		Reopen: func(t *testing.T, config string) store.Store { return New() },
	})
}

func TestRegistered(t *testing.T) {
	s, err := store.Open(t.Context(), "file:"+filepath.Join(t.TempDir(), "x.jsonl"))
	if err != nil {
		t.Fatalf("store.Open(file:...): %v", err)
	}
	defer s.Close()
	if _, ok := s.(*Store); !ok {
		t.Fatalf("store.Open returned %T, want *filestore.Store", s)
	}
}

// TestCloseRaceProcesses closes segments from several processes on one log
// file (each operation takes the file's lock in turn); the segments must
// still partition every stream.
func TestCloseRaceProcesses(t *testing.T) {
	storetest.RunProcessRace(t, storetest.ProcessRace{
		New: func() store.Store { return New() }, Config: filepath.Join(t.TempDir(), "race.jsonl"),
		ChildTest: "TestCloseRaceChild", Procs: 3, Workers: 2, Appends: 20, Reopen: true,
	})
}

// TestCloseRaceChild is a child process of TestCloseRaceProcesses (it does
// nothing when run on its own).
func TestCloseRaceChild(t *testing.T) {
	storetest.RunRaceChild(t, func() store.Store { return New() })
}
