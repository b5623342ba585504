package pebblestore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// TestQueryJoinsMatchSelect: filters that intersect index ranges (type and
// producer, the urgent index) over sparse, skewed data — where the join
// seeks rather than steps — return the pages query.Select returns, in
// both orders, page after page through the cursor.
//
// With clock, timestamps rise with the seqno (as the log writes them) but
// the clock steps back now and then, and the entries are committed in
// batches of 1 to 400: the index lists of schema 6 (many per range, some
// longer than listMax) beside the late entries' own records. Without,
// timestamps are random: nearly every entry is late.
func TestQueryJoinsMatchSelect(t *testing.T) {
	for _, clock := range []bool{false, true} {
		t.Run(fmt.Sprintf("clock=%t", clock), func(t *testing.T) { testQueryJoins(t, clock) })
	}
}

func testQueryJoins(t *testing.T, clock bool) {
	ctx := context.Background()
	s := quietStore()
	if err := s.Init(ctx, filepath.Join(t.TempDir(), "db")); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rows []wire.EntryRow
	at := base
	for i := uint64(1); i <= 20000; i++ {
		ts := base.Add(time.Duration(rng.IntN(20_000_000)) * time.Millisecond)
		if clock {
			at = at.Add(time.Duration(rng.IntN(2000)) * time.Millisecond) // ties now and then
			if rng.IntN(500) == 0 {
				at = at.Add(-time.Duration(rng.IntN(60)) * time.Second)
			}
			ts = at
		}
		sev := wire.Info
		switch u := rng.IntN(100); {
		case u < 2:
			sev = wire.Severity(rng.IntN(3)) // emergency … critical
		case u < 8:
			sev = wire.Severity(3 + rng.IntN(2)) // error, warning
		case u < 20:
			sev = wire.Debug
		}
		stream := "j"
		if i%5 == 0 {
			stream = "other"
		}
		rows = append(rows, wire.EntryRow{Seqno: i, StreamID: stream, Timestamp: wire.FormatTime(ts),
			EventType: fmt.Sprintf("%s.t%d", []string{"auth", "db", "net"}[rng.IntN(3)], rng.IntN(8)), Producer: fmt.Sprintf("p%d", rng.IntN(50)), Severity: sev,
			Payload: []byte{}, PrevEntryHash: make([]byte, 32), EntryHash: make([]byte, 32)})
	}
	for i := 0; i < len(rows); {
		n := len(rows)
		if clock {
			n = min(n-i, 1+rng.IntN(400))
		}
		if err := s.CommitBatch(ctx, store.Batch{Entries: rows[i : i+n]}); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	for _, qs := range []string{
		"type=auth.t1&producer=p3", "type=auth.*&producer=p7", "type=db.*&producer=p1&severity=error",
		"producer=p2&severity=critical", "type=net.t4&severity=warning", "type=auth.*&severity=alert",
		"severity=emergency", "producer=p9&type=nope.*", "type=db.t0&producer=p4&since=2026-01-01T00:10:00Z&until=2026-01-01T00:40:00Z",
		"", "since=2026-01-01T01:00:00Z&until=2026-01-01T03:00:00.5Z", "type=net.*&since=2026-01-01T02:00:00Z", "producer=p5&until=2026-01-01T04:00:00Z",
	} {
		for _, order := range []string{"newest", "oldest"} {
			v, err := url.ParseQuery(qs + "&limit=7&order=" + order)
			if err != nil {
				t.Fatal(err)
			}
			for page := 0; page < 15; page++ {
				f, err := query.Parse("j", v, base)
				if err != nil {
					t.Fatal(err)
				}
				got, more, err := s.QueryEntries(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				want, wantMore := query.Select(rows, f)
				if len(got) != len(want) || more != wantMore {
					t.Fatalf("%s %s page %d: %d rows more=%v, want %d more=%v", qs, order, page, len(got), more, len(want), wantMore)
				}
				for i := range got {
					if got[i].Seqno != want[i].Seqno {
						t.Fatalf("%s %s page %d: row %d is seqno %d, want %d", qs, order, page, i, got[i].Seqno, want[i].Seqno)
					}
				}
				if !more {
					break
				}
				v.Set("after", f.Cursor(query.Key(got[len(got)-1])))
			}
		}
	}
}
