package storetest

import (
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/store"
)

// reserve calls SegmentReserve and checks the id.
func reserve(t *testing.T, r store.SegmentReserver, stream string, want uint64) {
	t.Helper()
	id, err := r.SegmentReserve(t.Context(), stream)
	if err != nil || id != want {
		t.Fatalf("SegmentReserve(%s) = (%d, %v), want %d", stream, id, err, want)
	}
}

// reservation checks SegmentReservation.
func reservation(t *testing.T, r store.SegmentReserver, stream string, want uint64, wantOK bool) {
	t.Helper()
	id, ok, err := r.SegmentReservation(t.Context(), stream)
	checkOptU64(t, "SegmentReservation("+stream+")", id, ok, err, want, wantOK)
}

// testReservations pins store.SegmentReserver: a reserved id goes to the
// stream's next segment and to no other, unreserved segments get ids above
// every stored and reserved id, reserving is idempotent (also
// concurrently), and reservations survive a reopen.
func (h *harness) testReservations(t *testing.T) {
	s := h.open(t)
	r, ok := s.Store.(store.SegmentReserver)
	if !ok {
		t.Fatalf("%s: %T does not implement store.SegmentReserver", h.f.Name, s.Store)
	}
	reservation(t, r, "a", 0, false)
	mustSegment(t, s, segment("x", 1, 1), nil, 1)
	reserve(t, r, "a", 2)
	reserve(t, r, "a", 2) // idempotent
	reservation(t, r, "a", 2, true)
	reserve(t, r, "b", 3)
	// A stream without a reservation gets an id above every reserved one.
	mustSegment(t, s, segment("x", 2, 2), nil, 4)
	// A stream with one gets it, and the reservation ends.
	mustSegment(t, s, segment("b", 10, 10), nil, 3)
	reservation(t, r, "b", 0, false)
	reserve(t, r, "c", 5)
	mustSegment(t, s, segment("a", 20, 20), nil, 2)
	reserve(t, r, "a", 6)
	reservation(t, r, "b", 0, false)

	// Concurrent reservations of one stream agree.
	var wg sync.WaitGroup
	ids := make([]uint64, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = r.SegmentReserve(t.Context(), "z")
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != 7 {
			t.Fatalf("concurrent SegmentReserve(z) #%d = (%d, %v), want 7", i, ids[i], errs[i])
		}
	}
	if h.f.Reopen == nil {
		return
	}
	s = h.reopen(t, s)
	r = s.Store.(store.SegmentReserver)
	reservation(t, r, "a", 6, true)
	reservation(t, r, "c", 5, true)
	reservation(t, r, "b", 0, false)
	mustSegment(t, s, segment("c", 30, 30), nil, 5)
	mustSegment(t, s, segment("x", 3, 3), nil, 8)
	reserve(t, r, "b", 9)
}
