package audit

import (
	"context"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// StoreSource audits rows read from a store.
type StoreSource struct {
	Store store.Store
	// Window is how many seqnos each Range call covers (default 65536).
	Window uint64
}

// Entries streams the stream's entries from the store in seqno windows.
func (s StoreSource) Entries(ctx context.Context, stream string, fn func(wire.EntryRow) error) error {
	head, ok, err := s.Store.GlobalHead(ctx)
	if err != nil || !ok {
		return err
	}
	w := s.Window
	if w == 0 {
		w = 1 << 16
	}
	for lo := uint64(1); lo <= head; lo += w {
		rows, err := s.Store.Range(ctx, stream, lo, min(lo+w-1, head))
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// Segments lists the stream's segments.
func (s StoreSource) Segments(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	return s.Store.SegmentsList(ctx, stream)
}

// SegmentSeqnos returns a segment's members by leaf index.
func (s StoreSource) SegmentSeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	return s.Store.SegmentEntrySeqnos(ctx, id)
}
