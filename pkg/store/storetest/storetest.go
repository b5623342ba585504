// Package storetest is the conformance suite for store.Store backends: SPEC
// §15 with the behaviour fixed by DECISIONS 10 (stream list in creation
// order), 14, 18 (witness GC compares parsed times, keep_latest 0 keeps none)
// and 22 (RFC 3339 created_at).
//
// Every backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Factory{Name: "memory", New: func(t *testing.T) (store.Store, string) {
//			return memory.New(), "mem"
//		}})
//	}
//
// Behaviour the suite pins beyond the SPEC tables (so backends agree):
//   - StreamUpsert replaces every field of an existing row with the new row's
//     (created_at included) and keeps the row's creation-order position.
//   - WitnessGC with an older_than that is not RFC 3339 fails and deletes
//     nothing; a row whose received_at does not parse is never "older".
//   - SegmentEntrySeqnos of an unknown segment is an empty list, not an error.
//   - Contract errors are the typed errors of package store, checked with
//     errors.As / errors.Is (also through the remote store).
//   - store.QueryEntries (the backend's indexes, or the scan fallback)
//     returns what query.Select returns, page by page with the cursor, and
//     store.CountEntries counts a stream's entries.
//   - Every backend keeps segment-id reservations (store.SegmentReserver).
//   - SegmentInsert refuses a segment that breaks the stream's partition
//     into segments (*store.SegmentOverlapError); CloseRace proves it under
//     concurrent closes, and RunProcessRace across processes.
package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/store"
)

// DefaultStreamDescription is the description of the stream "default" that
// Init seeds (SPEC §15.2).
const DefaultStreamDescription = "Default stream created automatically at init."

// Factory makes stores of one backend for the suite.
type Factory struct {
	// Name names the backend in failure messages.
	Name string
	// New returns a fresh, uninitialised store and a config value that
	// Init accepts and that refers to fresh, empty storage. The suite calls
	// Init itself and closes the store in t.Cleanup.
	New func(t *testing.T) (s store.Store, config string)
	// Reopen returns a new uninitialised store instance that, after Init
	// with config, sees what an earlier (closed) store with that config
	// wrote. Nil if the backend is not durable; then durability tests skip.
	Reopen func(t *testing.T, config string) store.Store
}

// Run runs the whole conformance suite against the factory's backend.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.New == nil {
		t.Fatalf("storetest: factory %q has no New", f.Name)
	}
	h := &harness{f: f}
	t.Run("Lifecycle", h.testLifecycle)
	t.Run("Entries", h.testEntries)
	t.Run("RangeInto", h.testRangeInto)
	t.Run("Segments", h.testSegments)
	t.Run("SegmentTree", h.testSegmentTree)
	t.Run("Reservations", h.testReservations)
	t.Run("Witness", h.testWitness)
	t.Run("Streams", h.testStreams)
	t.Run("Copies", h.testCopies)
	t.Run("Batcher", h.testBatcher)
	t.Run("Query", h.testQuery)
	t.Run("Concurrency", h.testConcurrency)
	t.Run("CloseRace", h.testCloseRace)
	t.Run("Durability", h.testDurability)
}

type harness struct {
	f Factory
}

// opened is an initialised store whose Close runs at most once.
type opened struct {
	store.Store
	config string
	once   sync.Once
	err    error
}

// close closes the store once; later calls return the first result.
func (o *opened) close() error {
	o.once.Do(func() { o.err = o.Store.Close() })
	return o.err
}

// raw returns a fresh uninitialised store that is closed at cleanup.
func (h *harness) raw(t *testing.T) (store.Store, string) {
	t.Helper()
	s, config := h.f.New(t)
	if s == nil {
		t.Fatalf("%s: New returned a nil store", h.f.Name)
	}
	o := &opened{Store: s, config: config}
	t.Cleanup(func() { _ = o.close() })
	return s, config
}

// open returns a fresh initialised store.
func (h *harness) open(t *testing.T) *opened {
	t.Helper()
	s, config := h.f.New(t)
	if s == nil {
		t.Fatalf("%s: New returned a nil store", h.f.Name)
	}
	o := &opened{Store: s, config: config}
	t.Cleanup(func() {
		if err := o.close(); err != nil {
			t.Errorf("%s: Close: %v", h.f.Name, err)
		}
	})
	if err := s.Init(ctx(t), config); err != nil {
		t.Fatalf("%s: Init(%q): %v", h.f.Name, config, err)
	}
	return o
}

// reopen closes o and opens a new instance on the same config.
func (h *harness) reopen(t *testing.T, o *opened) *opened {
	t.Helper()
	if err := o.close(); err != nil {
		t.Fatalf("%s: Close before reopen: %v", h.f.Name, err)
	}
	s := h.f.Reopen(t, o.config)
	if s == nil {
		t.Fatalf("%s: Reopen returned a nil store", h.f.Name)
	}
	n := &opened{Store: s, config: o.config}
	t.Cleanup(func() {
		if err := n.close(); err != nil {
			t.Errorf("%s: Close after reopen: %v", h.f.Name, err)
		}
	})
	if err := s.Init(ctx(t), o.config); err != nil {
		t.Fatalf("%s: Init after reopen (%q): %v", h.f.Name, o.config, err)
	}
	return n
}

func ctx(t *testing.T) context.Context { return t.Context() }
