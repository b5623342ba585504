package store

import (
	"context"
	"fmt"
	"math"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/wire"
)

// EntryQuerier is implemented by stores with secondary indexes over their
// entries (stream+time, stream+type, stream+producer). QueryEntries must
// return exactly what query.Select returns over the stream's rows.
type EntryQuerier interface {
	// QueryEntries returns one page of the filter's matching rows, in its
	// order, and whether more rows match after the page.
	QueryEntries(ctx context.Context, f query.Filter) (page []wire.EntryRow, more bool, err error)
}

// EntryCounter is implemented by stores that count a stream's entries
// without reading them.
type EntryCounter interface {
	// CountEntries returns the number of the stream's entries.
	CountEntries(ctx context.Context, stream string) (uint64, error)
}

// QueryEntries answers a filter with the store's indexes when it has them
// (EntryQuerier), else by reading the whole stream and selecting
// (query.Select; fine for small stores, slow for large ones).
func QueryEntries(ctx context.Context, st Store, f query.Filter) ([]wire.EntryRow, bool, error) {
	if q, ok := st.(EntryQuerier); ok {
		return q.QueryEntries(ctx, f)
	}
	return ScanEntries(ctx, st, f)
}

// ScanEntries is the scan fallback of QueryEntries: it reads every row of
// the stream.
func ScanEntries(ctx context.Context, st Store, f query.Filter) ([]wire.EntryRow, bool, error) {
	rows, err := st.Range(ctx, f.Stream, 1, math.MaxUint64)
	if err != nil {
		return nil, false, fmt.Errorf("query stream %q: %w", f.Stream, err)
	}
	page, more := query.Select(rows, f)
	return page, more, nil
}

// CountEntries returns the number of the stream's entries, with the
// store's counter when it has one (EntryCounter), else by reading them.
func CountEntries(ctx context.Context, st Store, stream string) (uint64, error) {
	if c, ok := st.(EntryCounter); ok {
		return c.CountEntries(ctx, stream)
	}
	rows, err := st.Range(ctx, stream, 1, math.MaxUint64)
	if err != nil {
		return 0, fmt.Errorf("count entries of stream %q: %w", stream, err)
	}
	return uint64(len(rows)), nil
}
