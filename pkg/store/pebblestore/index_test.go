package pebblestore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func quietStore() *Store { return New(WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))) }

// TestUpgradeBuildsIndexes: a store of schema version 1 (entries without
// index records), 2 (without entry counts), 3 (without the urgent index)
// or 4 (urgent index keyed without the severity) gets them on open and then answers queries like a scan and counts its
// entries; the current version is recorded.
func TestUpgradeBuildsIndexes(t *testing.T) {
	for _, from := range []byte{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("from%d", from), func(t *testing.T) { testUpgrade(t, from) })
	}
}

// testUpgrade makes a store of schema version from (1: no index records
// and counts, 2: no counts) and opens it.
func testUpgrade(t *testing.T, from byte) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "db")
	s := quietStore()
	if err := s.Init(ctx, dir); err != nil {
		t.Fatal(err)
	}
	var rows []wire.EntryRow
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := uint64(1); i <= 25; i++ {
		rows = append(rows, wire.EntryRow{Seqno: i, StreamID: "default", Timestamp: wire.FormatTime(base.Add(time.Duration(i) * time.Second)),
			EventType: fmt.Sprintf("t.%d", i%3), Producer: fmt.Sprintf("p%d", i%2), Severity: wire.Severity(i % 8),
			Payload: []byte{}, PrevEntryHash: make([]byte, 32), EntryHash: make([]byte, 32)})
	}
	if err := s.CommitBatch(ctx, store.Batch{Entries: rows}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it a version 1 store: no index records.
	db, err := pebble.Open(dir, &pebble.Options{Logger: slogLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	drop := []string{prefixIdxUrgent}
	if from <= 2 {
		drop = append(drop, prefixCount)
	}
	if from == 1 {
		drop = append(drop, prefixIdxTime, prefixIdxType, prefixIdxProducer)
	}
	for _, p := range drop {
		if err := db.DeleteRange([]byte(p), upperBound([]byte(p)), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if from == 4 { // schema 4's urgent keys: no severity byte
		for _, r := range rows {
			if r.Severity <= urgentMax {
				k := appendPos(appendEscStream([]byte(prefixIdxUrgent), r.StreamID), query.Key(r))
				if err := db.Set(k, []byte{byte(r.Severity)}, pebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := db.Set(keyVersion, []byte{from}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = quietStore()
	if err := s.Init(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, v := range []query.Filter{
		{Stream: "default", Limit: 100},
		{Stream: "default", Type: "t.1", Limit: 100},
		{Stream: "default", Producer: "p0", Order: query.Oldest, Limit: 100},
		{Stream: "default", Type: "t.", TypePrefix: true, HasSeverity: true, MinSeverity: wire.Warning, Limit: 100},
		{Stream: "default", HasSeverity: true, MinSeverity: wire.Error, Limit: 100},
		{Stream: "default", HasSeverity: true, MinSeverity: wire.Warning, Order: query.Oldest, Limit: 100},
	} {
		got, _, err := s.QueryEntries(ctx, v)
		want, _ := query.Select(rows, v)
		if err != nil || len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%+v: got %d rows (%v), want %d", v, len(got), err, len(want))
		}
		for i := range got {
			if got[i].Seqno != want[i].Seqno {
				t.Fatalf("%+v: row %d is seqno %d, want %d", v, i, got[i].Seqno, want[i].Seqno)
			}
		}
	}
	urgent := key(prefixIdxUrgent, escStream("default"))
	n := 0
	if err := scan(s.db, urgent, upperBound(urgent), false, func(k, _ []byte) (bool, error) {
		n++
		if k[len(urgent)] > byte(urgentMax) || len(k) != len(urgent)+17 {
			t.Errorf("urgent index key %x after the upgrade is not <severity><position>", k)
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := 25 * 5 / 8; n < want {
		t.Errorf("%d urgent index records after the upgrade, want at least %d", n, want)
	}
	if n, err := s.CountEntries(ctx, "default"); err != nil || n != uint64(len(rows)) {
		t.Errorf("CountEntries after upgrade = %d, %v; want %d", n, err, len(rows))
	}
	ver, _, err := get(s.db, keyVersion)
	if err != nil || len(ver) != 1 || ver[0] != schemaVersion {
		t.Errorf("schema version after upgrade: %v %v", ver, err)
	}
}
