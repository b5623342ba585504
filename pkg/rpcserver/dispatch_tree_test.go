package rpcserver_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/wire"
)

// TestRangePagesFitAndCover: secure-log-range-page over two interleaved
// streams (a stream's seqnos are sparse) returns, page after page, exactly
// the stream's rows of the range, each page within max_bytes (but at
// least one row), whatever the budget.
func TestRangePagesFitAndCover(t *testing.T) {
	st := memStore(t)
	ctx := t.Context()
	for i := uint64(1); i <= 600; i++ {
		stream := "a"
		if i%3 == 0 {
			stream = "b"
		}
		row := wire.EntryRow{Seqno: i, StreamID: stream, SessionID: "s", BootID: "b", Timestamp: "t", EventType: "e",
			Severity: wire.Info, Producer: "p", PayloadEncoding: "cbor", Payload: make([]byte, int(i%50)), PrevEntryHash: wire.ZeroHash, EntryHash: wire.ZeroHash}
		if _, err := st.Insert(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		stream   string
		from, to uint64
		budget   uint64
	}{{"a", 1, 600, 1}, {"a", 5, 590, 2000}, {"b", 1, 1 << 63, 5000}, {"b", 3, 300, 0}, {"a", 601, 900, 100}} {
		t.Run(fmt.Sprintf("%s/%d-%d/%d", c.stream, c.from, c.to, c.budget), func(t *testing.T) {
			want, err := st.Range(ctx, c.stream, c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			var got []wire.EntryRow
			for lo, pages := c.from, 0; ; pages++ {
				if pages > 700 {
					t.Fatal("no end after 700 pages")
				}
				params := fmt.Appendf(nil, `[%q,%d,%d,%d]`, c.stream, lo, c.to, c.budget)
				res, err := rpcserver.Dispatch(ctx, st, wire.MethodRangePage, params)
				if err != nil {
					t.Fatal(err)
				}
				var page []wire.EntryRow
				if err := json.Unmarshal(res, &page); err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				if len(page) > 1 && c.budget > 0 && uint64(len(res)) > c.budget {
					t.Fatalf("page of %d rows is %d bytes, budget %d", len(page), len(res), c.budget)
				}
				got = append(got, page...)
				lo = page[len(page)-1].Seqno + 1
			}
			if len(got) != len(want) {
				t.Fatalf("%d rows in pages, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Seqno != want[i].Seqno || got[i].StreamID != c.stream || len(got[i].Payload) != len(want[i].Payload) {
					t.Fatalf("row %d: seqno %d of %s, want %d", i, got[i].Seqno, got[i].StreamID, want[i].Seqno)
				}
			}
		})
	}
}
