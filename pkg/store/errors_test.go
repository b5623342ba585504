package store

import (
	"errors"
	"reflect"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

// TestParseErrorRoundTrip: every typed error's text, as a server sends it
// and a transport wraps it, maps back to an equal typed error, and the
// text is kept exactly.
func TestParseErrorRoundTrip(t *testing.T) {
	for _, want := range []error{
		&DuplicateSeqnoError{Seqno: 42},
		&SegmentNotFoundError{SegmentID: 7},
		&StreamNotFoundError{Name: "nöpe: ✓"},
		&SegmentOverlapError{Stream: "a \"q\" b", SeqStart: 3, SeqEnd: 9, Reason: "overlaps the stream's sealed seqnos up to 4"},
	} {
		wrapped := errors.New("transport-http: server returned 500: " + want.Error())
		got := ParseError(wrapped)
		if got.Error() != wrapped.Error() {
			t.Fatalf("ParseError changed the text: %q, want %q", got, wrapped)
		}
		target := reflect.New(reflect.TypeOf(want)).Interface()
		if !errors.As(got, target) {
			t.Fatalf("ParseError(%q) does not unwrap to %T", wrapped, want)
		}
		if e := reflect.ValueOf(target).Elem().Interface(); !reflect.DeepEqual(e, want) {
			t.Fatalf("ParseError(%q) = %#v, want %#v", wrapped, e, want)
		}
	}
	if got := ParseError(errors.New("sqlite store: " + ErrMissingSeqno.Error())); !errors.Is(got, ErrMissingSeqno) {
		t.Fatalf("missing seqno text not mapped: %v", got)
	}
	plain := errors.New("connection refused")
	if got := ParseError(plain); got != plain {
		t.Fatalf("ParseError of an unrelated error = %v, want it unchanged", got)
	}
}

func TestWitnessGCPolicy(t *testing.T) {
	rows := []wire.WitnessRow{
		{ID: 1, ReceivedAt: "2020-01-01T00:00:00Z"},
		{ID: 2, ReceivedAt: "not a time"},
		{ID: 3, ReceivedAt: "2020-01-01T01:00:00+01:00"}, // = 00:00Z
		{ID: 5, ReceivedAt: "2030-01-01T00:00:00Z"},
		{ID: 6, ReceivedAt: "2020-01-01T00:00:00Z"},
	}
	u := func(n uint32) *uint32 { return &n }
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		name string
		keep *uint32
		old  *string
		want []int64
	}{
		{"nothing", nil, nil, nil},
		{"keep 0 alone", u(0), nil, nil},
		{"keep 2", u(2), nil, []int64{1, 2, 3}},
		{"keep more than all", u(9), nil, nil},
		{"cutoff, unparsable kept, parsed compare", nil, s("2020-01-01T00:30:00+00:00"), []int64{1, 3, 6}},
		{"cutoff and keep 1", u(1), s("2025-01-01T00:00:00Z"), []int64{1, 3}},
	} {
		p, err := NewWitnessGCPolicy(c.keep, c.old)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := p.Victims(rows); !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s: victims %v, want %v", c.name, got, c.want)
		}
	}
	if _, err := NewWitnessGCPolicy(nil, s("yesterday")); err == nil {
		t.Fatal("an older_than that is not RFC 3339 was accepted")
	}
}
