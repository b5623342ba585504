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
// index records), 2 (without entry counts), 3 (without the urgent index),
// 4 (urgent index keyed without the severity), 5 (one index record per
// entry, counts without high marks) or 6 (lists, under xt/ … cn/) gets the
// current index lists and counts on open — the old records gone — and then
// answers queries like a scan and counts its entries; the current version
// is recorded.
func TestUpgradeBuildsIndexes(t *testing.T) {
	for _, from := range []byte{1, 2, 3, 4, 5, 6} {
		t.Run(fmt.Sprintf("from%d", from), func(t *testing.T) { testUpgrade(t, from) })
	}
}

// testUpgrade makes a store of schema version from and opens it.
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
		at := base.Add(time.Duration(i) * time.Second)
		if i == 20 {
			at = base // the clock stepped back: a late entry
		}
		rows = append(rows, wire.EntryRow{Seqno: i, StreamID: "default", Timestamp: wire.FormatTime(at),
			EventType: fmt.Sprintf("t.%d", i%3), Producer: fmt.Sprintf("p%d", i%2), Severity: wire.Severity(i % 8),
			Payload: []byte{}, PrevEntryHash: make([]byte, 32), EntryHash: make([]byte, 32)})
	}
	if err := s.CommitBatch(ctx, store.Batch{Entries: rows}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Replace the index records and counts with those of schema from.
	db, err := pebble.Open(dir, &pebble.Options{Logger: slogLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{prefixIdxTime, prefixIdxType, prefixIdxProducer, prefixIdxUrgent, prefixCount} {
		if err := db.DeleteRange([]byte(p), upperBound([]byte(p)), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	b := db.NewBatch()
	for _, r := range rows {
		pos, sev := query.Key(r), []byte{byte(r.Severity)}
		run := []byte{} // schemas 2 to 5: one record per entry, keyed by its position
		if from == 6 {
			run = []byte{runInOrder} // a list of one
		}
		if from >= 2 {
			for _, k := range [][]byte{
				appendEscStream([]byte("xt/"), r.StreamID),
				appendEscStream(appendEscStream([]byte("xy/"), r.StreamID), r.EventType),
				appendEscStream(appendEscStream([]byte("xp/"), r.StreamID), r.Producer),
			} {
				if err := b.Set(appendPos(append(k, run...), pos), sev, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		if r.Severity <= urgentMax && from >= 4 {
			k := appendEscStream([]byte("xs/"), r.StreamID)
			if from >= 5 {
				k = append(k, byte(r.Severity))
			}
			if err := b.Set(appendPos(append(k, run...), pos), sev, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if from >= 3 { // schemas 3 to 6: the count alone, or with a high mark
		v := be64(uint64(len(rows)))
		if from == 6 {
			v = append(v, make([]byte, 16)...)
		}
		if err := b.Set(key("cn/", escStream("default")), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Set(keyVersion, []byte{from}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
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
	// The time index is one list of the 24 entries in order and the late
	// entry's own record; no record of an older schema is left.
	for _, p := range legacyIdxPrefixes {
		if err := scan(s.db, []byte(p), upperBound([]byte(p)), false, func(k, _ []byte) (bool, error) {
			t.Errorf("record %x of an older schema left after the upgrade", k)
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{prefixIdxTime, prefixIdxType, prefixIdxProducer, prefixIdxUrgent} {
		if err := scan(s.db, []byte(p), upperBound([]byte(p)), false, func(k, _ []byte) (bool, error) {
			if run := k[len(k)-17]; run != runInOrder && run != runLate {
				t.Errorf("index key %x after the upgrade has no run byte", k)
			}
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	xt := key(prefixIdxTime, escStream("default"))
	var keys []byte
	var vals []int
	if err := scan(s.db, xt, upperBound(xt), false, func(k, v []byte) (bool, error) {
		keys, vals = append(keys, k[len(xt)]), append(vals, len(v))
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != runLate || keys[1] != runInOrder || vals[0] != 1 {
		t.Errorf("time index records after the upgrade: runs %q, value sizes %v; want one late record and one list", keys, vals)
	}
	if n, err := s.CountEntries(ctx, "default"); err != nil || n != uint64(len(rows)) {
		t.Errorf("CountEntries after upgrade = %d, %v; want %d", n, err, len(rows))
	}
	ver, _, err := get(s.db, keyVersion)
	if err != nil || len(ver) != 1 || ver[0] != schemaVersion {
		t.Errorf("schema version after upgrade: %v %v", ver, err)
	}
}
