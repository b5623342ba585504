package store

import (
	"context"

	"github.com/securelog/securelog/pkg/wire"
)

// RowBuffer is storage that RangeInto decodes rows into. Reused across
// calls once the caller is done with the rows of the previous one, it
// spares a long scan (verify-chain) an allocation per row. The zero value
// is ready to use.
type RowBuffer struct {
	// Rows holds the decoded rows (capacity reused).
	Rows []wire.EntryRow
	// Arena holds the rows' bytes (capacity reused).
	Arena []byte
}

// RangeIntoStore is implemented by stores that can decode a Range into a
// caller's RowBuffer: the returned rows (buf.Rows) and their byte fields
// live in buf and are overwritten by the next RangeInto with the same buf.
type RangeIntoStore interface {
	RangeInto(ctx context.Context, stream string, from, to uint64, buf *RowBuffer) ([]wire.EntryRow, error)
}
