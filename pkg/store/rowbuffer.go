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
	// Encodings, when a RangeInto leaves it as long as Rows, holds each
	// row's canonical CBOR encoding (wire.AppendEntry of Rows[i].Fields(),
	// the bytes its entry hash is computed over), made from the stored
	// content itself; the rows' text and byte fields then alias it
	// (wire.AppendEntryRow), so verification hashes these bytes instead of
	// encoding each row again. A store that does not fill it leaves it
	// empty (capacity reused).
	Encodings [][]byte
}

// RangeIntoStore is implemented by stores that can decode a Range into a
// caller's RowBuffer: the returned rows (buf.Rows) and their byte fields
// live in buf and are overwritten by the next RangeInto with the same buf.
type RangeIntoStore interface {
	RangeInto(ctx context.Context, stream string, from, to uint64, buf *RowBuffer) ([]wire.EntryRow, error)
}
