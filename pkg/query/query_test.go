package query

import (
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/wire"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func ts(t time.Time) string { return wire.FormatTime(t) }

func TestParse(t *testing.T) {
	warning := wire.Warning
	tests := []struct {
		name  string
		query string
		check func(t *testing.T, f Filter)
		param string // non-empty: want a *ParamError naming it
	}{
		{name: "defaults", query: "", check: func(t *testing.T, f Filter) {
			if f.Order != Newest || f.Limit != DefaultLimit || f.HasSince || f.HasUntil || f.HasSeverity || f.HasAfter || f.Type != "" {
				t.Errorf("defaults: %+v", f)
			}
		}},
		{name: "rfc3339 bounds", query: "since=2026-11-29T10:00:00Z&until=2026-11-29T12:30:00%2B01:00", check: func(t *testing.T, f Filter) {
			if !f.HasSince || f.Since != time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC).UnixNano() {
				t.Errorf("since = %d", f.Since)
			}
			if !f.HasUntil || f.Until != time.Date(2026, 11, 29, 11, 30, 0, 0, time.UTC).UnixNano() {
				t.Errorf("until = %d", f.Until)
			}
		}},
		{name: "until not after since", query: "since=2026-11-29T10:00:00Z&until=2026-11-29T11:00:00%2B01:00", param: "until"},
		{name: "duration since", query: "since=90m", check: func(t *testing.T, f Filter) {
			if f.Since != now.Add(-90*time.Minute).UnixNano() {
				t.Errorf("since = %d", f.Since)
			}
		}},
		{name: "negative duration", query: "since=-1h", param: "since"},
		{name: "garbage time", query: "until=yesterday", param: "until"},
		{name: "exact type", query: "type=auth.login", check: func(t *testing.T, f Filter) {
			if f.Type != "auth.login" || f.TypePrefix {
				t.Errorf("type %q prefix %v", f.Type, f.TypePrefix)
			}
		}},
		{name: "prefix type", query: "type=auth.*", check: func(t *testing.T, f Filter) {
			if f.Type != "auth." || !f.TypePrefix {
				t.Errorf("type %q prefix %v", f.Type, f.TypePrefix)
			}
		}},
		{name: "star inside type", query: "type=a*b", param: "type"},
		{name: "two stars", query: "type=a**", param: "type"},
		{name: "severity", query: "severity=warning", check: func(t *testing.T, f Filter) {
			if !f.HasSeverity || f.MinSeverity != warning {
				t.Errorf("severity %v %v", f.HasSeverity, f.MinSeverity)
			}
		}},
		{name: "bad severity", query: "severity=WARN", param: "severity"},
		{name: "limit capped", query: "limit=100000", check: func(t *testing.T, f Filter) {
			if f.Limit != MaxLimit {
				t.Errorf("limit %d", f.Limit)
			}
		}},
		{name: "limit zero", query: "limit=0", param: "limit"},
		{name: "limit text", query: "limit=ten", param: "limit"},
		{name: "order oldest", query: "order=oldest", check: func(t *testing.T, f Filter) {
			if f.Order != Oldest {
				t.Errorf("order %v", f.Order)
			}
		}},
		{name: "bad order", query: "order=up", param: "order"},
		{name: "unknown param", query: "sinse=1h", param: "sinse"},
		{name: "repeated param", query: "type=a&type=b", param: "type"},
		{name: "bad cursor", query: "after=xyz", param: "after"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse("s", v, now)
			if tc.param != "" {
				var pe *ParamError
				if !errors.As(err, &pe) || pe.Param != tc.param {
					t.Fatalf("Parse(%q) = %v, want a ParamError for %q", tc.query, err, tc.param)
				}
				if !strings.Contains(err.Error(), tc.param) {
					t.Errorf("error %q does not name %q", err, tc.param)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.query, err)
			}
			tc.check(t, f)
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	f, err := Parse("s", url.Values{"type": {"auth.*"}, "order": {"oldest"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Position{{0, 1}, {math.MinInt64, 7}, {now.UnixNano(), math.MaxUint64}, {-5, 3}} {
		tok := f.Cursor(p)
		got, err := DecodeCursor(tok, f)
		if err != nil || got != p {
			t.Errorf("DecodeCursor(Cursor(%v)) = %v, %v", p, got, err)
		}
		g, err := Parse("s", url.Values{"type": {"auth.*"}, "order": {"oldest"}, "after": {tok}, "limit": {"5"}}, now)
		if err != nil || !g.HasAfter || g.After != p {
			t.Errorf("Parse with after: %+v, %v", g, err)
		}
	}
}

func TestCursorRefusedForAnotherQuery(t *testing.T) {
	f, _ := Parse("s", url.Values{"type": {"auth.*"}}, now)
	tok := f.Cursor(Position{Time: 1, Seqno: 2})
	for _, other := range []url.Values{
		{"type": {"auth.login"}},
		{"type": {"auth.*"}, "order": {"oldest"}},
		{"type": {"auth.*"}, "producer": {"p"}},
		{"type": {"auth.*"}, "severity": {"error"}},
		{"type": {"auth.*"}, "since": {"1h"}},
	} {
		g, _ := Parse("s", other, now)
		if _, err := DecodeCursor(tok, g); err == nil {
			t.Errorf("cursor of %v accepted for %v", f, other)
		}
	}
	g, _ := Parse("t", url.Values{"type": {"auth.*"}}, now)
	if _, err := DecodeCursor(tok, g); err == nil {
		t.Error("cursor accepted for another stream")
	}
}

func row(seqno uint64, at time.Time, typ string, sev wire.Severity, producer string) wire.EntryRow {
	return wire.EntryRow{Seqno: seqno, StreamID: "s", Timestamp: ts(at), EventType: typ, Severity: sev, Producer: producer}
}

func seqnos(rows []wire.EntryRow) []uint64 {
	out := []uint64{}
	for _, r := range rows {
		out = append(out, r.Seqno)
	}
	return out
}

func TestSelect(t *testing.T) {
	base := now.Add(-time.Hour)
	rows := []wire.EntryRow{
		row(1, base, "auth.login", wire.Info, "sshd"),
		row(2, base.Add(time.Minute), "auth.logout", wire.Notice, "sshd"),
		row(3, base.Add(2*time.Minute), "authz.deny", wire.Warning, "opa"),
		row(4, base.Add(2*time.Minute), "auth.login", wire.Error, "sshd"), // same time as 3: seqno breaks the tie
		row(5, base.Add(3*time.Minute), "db.query", wire.Debug, "pg"),
		{Seqno: 6, StreamID: "other", Timestamp: ts(base), EventType: "auth.login"},
		{Seqno: 7, StreamID: "s", Timestamp: "not a time", EventType: "auth.login", Severity: wire.Debug, Producer: "sshd"},
	}
	tests := []struct {
		query string
		want  []uint64
		more  bool
	}{
		{"", []uint64{5, 4, 3, 2, 1, 7}, false},
		{"order=oldest", []uint64{7, 1, 2, 3, 4, 5}, false},
		{"type=auth.login", []uint64{4, 1, 7}, false},
		{"type=auth.*&order=oldest", []uint64{7, 1, 2, 4}, false},
		{"type=auth*&order=oldest", []uint64{7, 1, 2, 3, 4}, false},
		{"type=*&limit=2", []uint64{5, 4}, true},
		{"producer=sshd&severity=notice", []uint64{4, 2}, false},
		{"severity=error", []uint64{4}, false},
		{"since=" + url.QueryEscape(ts(base.Add(time.Minute))) + "&until=" + url.QueryEscape(ts(base.Add(3*time.Minute))), []uint64{4, 3, 2}, false},
		{"limit=3&order=oldest", []uint64{7, 1, 2}, true},
		{"producer=nobody", []uint64{}, false},
	}
	for _, tc := range tests {
		v, _ := url.ParseQuery(tc.query)
		f, err := Parse("s", v, now)
		if err != nil {
			t.Fatalf("%q: %v", tc.query, err)
		}
		page, more := Select(rows, f)
		if got := seqnos(page); !equal(got, tc.want) || more != tc.more {
			t.Errorf("%q: got %v more=%v, want %v more=%v", tc.query, got, more, tc.want, tc.more)
		}
	}
}

// TestSelectPaging walks every page of a query with the cursor and checks
// the pages concatenate to the whole result, in both orders.
func TestSelectPaging(t *testing.T) {
	var rows []wire.EntryRow
	for i := uint64(1); i <= 23; i++ {
		// Several entries share a timestamp, and time steps back once.
		at := now.Add(time.Duration(i/3) * time.Second)
		if i == 10 {
			at = now
		}
		rows = append(rows, row(i, at, "t", wire.Info, "p"))
	}
	for _, order := range []string{"newest", "oldest"} {
		f, _ := Parse("s", url.Values{"order": {order}, "limit": {"23"}}, now)
		all, _ := Select(rows, f)
		var walked []wire.EntryRow
		v := url.Values{"order": {order}, "limit": {"4"}}
		for n := 0; ; n++ {
			f, err := Parse("s", v, now)
			if err != nil {
				t.Fatal(err)
			}
			page, more := Select(rows, f)
			walked = append(walked, page...)
			if !more {
				break
			}
			v.Set("after", f.Cursor(Key(page[len(page)-1])))
			if n > 10 {
				t.Fatal("paging does not end")
			}
		}
		if !equal(seqnos(walked), seqnos(all)) {
			t.Errorf("%s: pages %v, whole %v", order, seqnos(walked), seqnos(all))
		}
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRenderPayload(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("héllo"), {0xff, 0x00, 0x01}, []byte(`{"a":1}`)} {
		p := RenderPayload(b)
		if (p.Text == nil) == (p.Base64 == nil) {
			t.Fatalf("%x: want exactly one of text and base64: %+v", b, p)
		}
		got, err := p.Bytes()
		if err != nil || string(got) != string(b) {
			t.Errorf("%x: round trip %x, %v", b, got, err)
		}
	}
	if p := RenderPayload([]byte{0xff}); p.Encoding != "base64" {
		t.Errorf("invalid UTF-8 rendered as %q", p.Encoding)
	}
}

// FuzzParse: the filter/cursor decoder never panics, every error is a
// *ParamError, and an accepted cursor round-trips.
func FuzzParse(f *testing.F) {
	f.Add("type=auth.*&severity=error&limit=5")
	f.Add("since=1h&until=2026-01-01T00:00:00Z&order=oldest")
	f.Add("after=AQAAAAAAAAAAAAAAAAAAAAAAAAAA")
	tok := Filter{Stream: "s"}.Cursor(Position{Time: 5, Seqno: 9})
	f.Add("after=" + tok)
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		flt, err := Parse("s", v, now)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q): error %T %v is not a *ParamError", q, err, err)
			}
			return
		}
		if flt.Limit < 1 || flt.Limit > MaxLimit {
			t.Fatalf("Parse(%q): limit %d out of range", q, flt.Limit)
		}
		if flt.HasAfter {
			got, err := DecodeCursor(flt.Cursor(flt.After), flt)
			if err != nil || got != flt.After {
				t.Fatalf("cursor round trip of %v: %v %v", flt.After, got, err)
			}
		}
	})
}
