package securelog

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/wire"
)

// The stamper writes what wire.FormatTime writes, for every kind of
// fraction and across second, day and year boundaries, in any order.
func TestStamperMatchesFormatTime(t *testing.T) {
	var s stamper
	base := time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		base, base.Add(time.Millisecond), base.Add(time.Microsecond), base.Add(1),
		base.Add(1500 * time.Millisecond), base.Add(2 * time.Second), base.Add(2*time.Second + 7),
		base.Add(-time.Hour), time.Date(1970, 1, 1, 0, 0, 0, 5, time.UTC),
		base.In(time.FixedZone("x", 5*3600+1800)).Add(120 * time.Microsecond),
	}
	for range 20000 {
		d := time.Duration(r.Int64N(int64(4 * time.Second)))
		switch r.IntN(4) {
		case 0:
			d = d.Truncate(time.Millisecond)
		case 1:
			d = d.Truncate(time.Microsecond)
		case 2:
			d = d.Truncate(time.Second)
		}
		times = append(times, base.Add(d))
	}
	for _, tm := range times {
		if got, want := s.format(tm), wire.FormatTime(tm); got != want {
			t.Fatalf("%v: stamper %q, FormatTime %q", tm, got, want)
		}
	}
}
