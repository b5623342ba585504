package wire

import (
	"testing"
	"time"
)

func TestFormatTime(t *testing.T) {
	base := time.Date(2026, 8, 4, 10, 11, 12, 0, time.UTC)
	for _, tc := range []struct {
		ns   int
		want string
	}{
		{0, "2026-08-04T10:11:12+00:00"},
		{500_000_000, "2026-08-04T10:11:12.500+00:00"},
		{1_000_000, "2026-08-04T10:11:12.001+00:00"},
		{123_456_000, "2026-08-04T10:11:12.123456+00:00"},
		{1_000, "2026-08-04T10:11:12.000001+00:00"},
		{123_456_789, "2026-08-04T10:11:12.123456789+00:00"},
		{1, "2026-08-04T10:11:12.000000001+00:00"},
	} {
		got := FormatTime(base.Add(time.Duration(tc.ns)))
		if got != tc.want {
			t.Errorf("ns=%d: got %q want %q", tc.ns, got, tc.want)
		}
		back, err := ParseTime(got)
		if err != nil || !back.Equal(base.Add(time.Duration(tc.ns))) {
			t.Errorf("round trip %q: %v %v", got, back, err)
		}
	}
	loc := time.FixedZone("x", 3600)
	if got := FormatTime(time.Date(2026, 1, 1, 1, 0, 0, 0, loc)); got != "2026-01-01T00:00:00+00:00" {
		t.Errorf("non-UTC input: %q", got)
	}
}
