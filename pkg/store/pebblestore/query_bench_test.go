package pebblestore_test

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

var (
	queryEntries = flag.Int("query.entries", 200_000, "BenchmarkQuery100: entries in the benchmark store")
	queryDir     = flag.String("query.dir", "", "BenchmarkQuery100: keep the store in this directory and reuse it when it already holds -query.entries entries")
)

var queryBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// queryBenchRow is entry i of the benchmark store: 20 event types in 4
// families, 50 producers, every severity, one entry per millisecond, a
// 100-byte payload, 90 % in stream "bench" and 10 % in "other".
func queryBenchRow(i uint64, payload []byte) wire.EntryRow {
	families := []string{"auth", "db", "net", "app"}
	stream := "bench"
	if i%10 == 0 {
		stream = "other"
	}
	return wire.EntryRow{Seqno: i, StreamID: stream, SessionID: "s", BootID: "b",
		Timestamp: wire.FormatTime(queryBase.Add(time.Duration(i) * time.Millisecond)),
		EventType: fmt.Sprintf("%s.e%d", families[i%4], i%5), Severity: wire.Severity(i * 7 % 8),
		Producer: fmt.Sprintf("producer-%02d", i%50), PayloadEncoding: "cbor", Payload: payload,
		PrevEntryHash: make([]byte, 32), EntryHash: make([]byte, 32)}
}

// openQueryStore opens (and fills, unless -query.dir already holds them)
// a store with n entries.
func openQueryStore(b *testing.B, n int) *pebblestore.Store {
	dir := *queryDir
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "db")
	}
	ctx := context.Background()
	s := pebblestore.New(quiet(), pebblestore.WithCacheSize(64<<20))
	if err := s.Init(ctx, dir); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	head, _, err := s.GlobalHead(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if head >= uint64(n) {
		return s
	}
	if head != 0 {
		b.Fatalf("store %s holds %d entries, want 0 or %d", dir, head, n)
	}
	if err := s.StreamUpsert(ctx, wire.StreamRow{Name: "bench", Tier: "public", CreatedAt: wire.FormatTime(queryBase)}); err != nil {
		b.Fatal(err)
	}
	if err := s.StreamUpsert(ctx, wire.StreamRow{Name: "other", Tier: "public", CreatedAt: wire.FormatTime(queryBase)}); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"user":"alice","action":"login","source":"10.0.0.1","detail":"a 100-byte payload of the benchmark"}`)
	start := time.Now()
	const batch = 5000
	rows := make([]wire.EntryRow, 0, batch)
	for i := uint64(1); i <= uint64(n); i++ {
		rows = append(rows, queryBenchRow(i, payload))
		if len(rows) == batch || i == uint64(n) {
			if err := s.CommitBatch(ctx, store.Batch{Entries: rows}); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	fmt.Fprintf(os.Stderr, "BenchmarkQuery100: wrote %d entries in %v\n", n, time.Since(start).Round(time.Second))
	return s
}

// BenchmarkQuery100 measures queries returning 100 rows from a store of
// -query.entries entries (issue 12: 10,000,000 entries ≤ 50 ms p99) and
// reports p50 and p99 latency in ms besides ns/op.
//
//	go test ./pkg/store/pebblestore -run XXX -bench Query100 -query.entries 1000000 -query.dir /tmp/qb
func BenchmarkQuery100(b *testing.B) {
	s := openQueryStore(b, *queryEntries)
	mid := queryBase.Add(time.Duration(*queryEntries/2) * time.Millisecond)
	cases := []struct {
		name string
		v    string
	}{
		{"newest", ""},
		{"oldest", "order=oldest"},
		{"type-exact", "type=db.e3"},
		{"type-prefix", "type=auth.*"},
		{"producer+severity", "producer=producer-07&severity=warning"},
		{"time-range-middle", "since=" + url.QueryEscape(wire.FormatTime(mid)) + "&until=" + url.QueryEscape(wire.FormatTime(mid.Add(time.Hour)))},
		{"type+time", "type=net.*&since=" + url.QueryEscape(wire.FormatTime(mid))},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			v, err := urlValues(tc.v)
			if err != nil {
				b.Fatal(err)
			}
			f, err := query.Parse("bench", v, queryBase)
			if err != nil {
				b.Fatal(err)
			}
			// Page 1 gives the cursor of page 2; the loop alternates both.
			first, _, err := s.QueryEntries(context.Background(), f)
			if err != nil || len(first) != 100 {
				b.Fatalf("%s: %d rows, %v", tc.name, len(first), err)
			}
			page2 := f
			page2.HasAfter, page2.After = true, query.Key(first[len(first)-1])
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				g := f
				if i%2 == 1 {
					g = page2
				}
				t0 := time.Now()
				rows, _, err := s.QueryEntries(context.Background(), g)
				lat = append(lat, time.Since(t0))
				if err != nil || len(rows) != 100 {
					b.Fatalf("%s: %d rows, %v", tc.name, len(rows), err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(*queryEntries), "entries")
		})
	}
}

func urlValues(s string) (map[string][]string, error) { return url.ParseQuery(s) }
