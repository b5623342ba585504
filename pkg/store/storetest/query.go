package storetest

import (
	"fmt"
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// queryRows are the entries of the query conformance test: two streams,
// types under two prefixes, three producers, every severity, timestamps
// that tie and one that steps back, with 0, 3, 6 and 9 fraction digits.
func queryRows() []wire.EntryRow {
	base := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	types := []string{"auth.login", "auth.logout", "authz.deny", "db.query", "db"}
	producers := []string{"sshd", "pg", "opa\x00x"}
	var rows []wire.EntryRow
	for i := uint64(1); i <= 60; i++ {
		at := base.Add(time.Duration(i/2) * time.Second) // pairs tie
		switch i % 4 {
		case 1:
			at = at.Add(250 * time.Millisecond)
		case 2:
			at = at.Add(123456 * time.Microsecond)
		case 3:
			at = at.Add(7)
		}
		if i == 30 {
			at = base // the clock stepped back
		}
		stream := "q"
		if i%7 == 0 {
			stream = "q2"
		}
		r := entry(i, stream)
		r.Timestamp = wire.FormatTime(at)
		r.EventType = types[i%uint64(len(types))]
		r.Producer = producers[i%uint64(len(producers))]
		r.Severity = wire.Severity(i % 8)
		rows = append(rows, r)
	}
	return rows
}

// queryCases are the filters compared (with stream q or q2).
var queryCases = []string{
	"",
	"order=oldest",
	"type=auth.login",
	"type=auth.*",
	"type=auth*&order=oldest",
	"type=db*",
	"type=db",
	"type=nothing.*",
	"type=*",
	"producer=pg",
	"producer=opa%00x&order=oldest",
	"producer=pg&type=auth.*",
	"producer=sshd&type=db.query",
	"severity=warning",
	"severity=emergency&order=oldest",
	"type=auth.*&severity=error",
	"type=*&severity=error",
	"producer=pg&severity=warning",
	"type=auth.login&producer=pg&severity=critical&order=oldest",
	"severity=critical&since=2026-11-29T10:00:05Z&until=2026-11-29T10:00:20Z",
	"severity=notice&order=oldest",
	"since=2026-11-29T10:00:10Z",
	"until=2026-11-29T10:00:10.123456Z",
	"since=2026-11-29T10:00:05.25Z&until=2026-11-29T10:00:20Z&order=oldest",
	"since=2026-11-29T10:00:05Z&until=2026-11-29T10:00:20Z&type=auth.*&producer=sshd",
	"since=2026-11-29T11:00:00Z",
}

func (h *harness) testQuery(t *testing.T) {
	o := h.open(t)
	c := ctx(t)
	rows := queryRows()
	for _, s := range []string{"q", "q2"} {
		if err := o.StreamUpsert(c, wire.StreamRow{Name: s, Tier: "public", CreatedAt: "2026-01-01T00:00:00+00:00"}); err != nil {
			t.Fatal(err)
		}
	}
	if b, ok := o.Store.(store.Batcher); ok {
		if err := b.CommitBatch(c, store.Batch{Entries: rows[:40]}); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows[40:] {
			if err := b.CommitBatch(c, store.Batch{Entries: []wire.EntryRow{r}}); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		for _, r := range rows {
			if _, err := o.Insert(c, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, stream := range []string{"q", "q2", "missing"} {
		for _, qs := range queryCases {
			for _, limit := range []string{"1000", "3"} {
				name := fmt.Sprintf("%s?%s&limit=%s", stream, qs, limit)
				v, err := url.ParseQuery(qs)
				if err != nil {
					t.Fatal(err)
				}
				v.Set("limit", limit)
				// Walk every page with the cursor; the pages must be what
				// query.Select gives over all rows.
				var got []wire.EntryRow
				for page := 0; ; page++ {
					f, err := query.Parse(stream, v, now)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					want, wantMore := query.Select(rows, f)
					rs, more, err := store.QueryEntries(c, o.Store, f)
					if err != nil {
						t.Fatalf("%s page %d: %v", name, page, err)
					}
					if !sameSeqnos(rs, want) || more != wantMore {
						t.Fatalf("%s page %d: got %v more=%v, want %v more=%v", name, page, seqnoList(rs), more, seqnoList(want), wantMore)
					}
					for i := range rs {
						if d := diffEntry(want[i], rs[i]); d != "" {
							t.Fatalf("%s: row %d differs: %s", name, rs[i].Seqno, d)
						}
					}
					got = append(got, rs...)
					if !more || page > 60 {
						break
					}
					v.Set("after", f.Cursor(query.Key(rs[len(rs)-1])))
				}
				v.Del("after")
				v.Set("limit", "1000")
				f, _ := query.Parse(stream, v, now)
				all, _ := query.Select(rows, f)
				if !sameSeqnos(got, all) {
					t.Errorf("%s: pages concatenate to %v, want %v", name, seqnoList(got), seqnoList(all))
				}
			}
		}
	}
	for _, stream := range []string{"q", "q2", "missing"} {
		n, err := store.CountEntries(c, o.Store, stream)
		want := 0
		for _, r := range rows {
			if r.StreamID == stream {
				want++
			}
		}
		if err != nil || n != uint64(want) {
			t.Errorf("CountEntries(%q) = %d, %v; want %d", stream, n, err, want)
		}
	}
	// The whole stream through the fallback agrees with the backend.
	f := query.Filter{Stream: "q", Limit: math.MaxInt32}
	a, _, errA := store.ScanEntries(c, o.Store, f)
	b, _, errB := store.QueryEntries(c, o.Store, f)
	if errA != nil || errB != nil || !sameSeqnos(a, b) {
		t.Errorf("scan %v (%v) and query %v (%v) disagree", seqnoList(a), errA, seqnoList(b), errB)
	}
}

func seqnoList(rows []wire.EntryRow) []uint64 {
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r.Seqno
	}
	return out
}

func sameSeqnos(a, b []wire.EntryRow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Seqno != b[i].Seqno {
			return false
		}
	}
	return true
}
