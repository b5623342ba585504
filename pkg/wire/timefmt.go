package wire

import (
	"strconv"
	"time"
)

// FormatTime renders t in the reference writer format of SPEC §5.4:
// YYYY-MM-DDTHH:MM:SS[.F]+00:00 in UTC, where the fraction is omitted when the
// sub-second part is zero and otherwise has exactly 3, 6 or 9 digits, the
// fewest that represent the nanoseconds exactly.
func FormatTime(t time.Time) string {
	t = t.UTC()
	b := make([]byte, 0, 35)
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	b = AppendTimeFraction(b, t.Nanosecond())
	return string(append(b, "+00:00"...))
}

// AppendTimeFraction appends the fraction of FormatTime for ns
// nanoseconds (0 ≤ ns < 1e9) to b: nothing for 0, else "." and exactly
// 3, 6 or 9 digits, the fewest that represent ns exactly.
func AppendTimeFraction(b []byte, ns int) []byte {
	if ns == 0 {
		return b
	}
	digits, v := 9, ns
	switch {
	case ns%1_000_000 == 0:
		digits, v = 3, ns/1_000_000
	case ns%1_000 == 0:
		digits, v = 6, ns/1_000
	}
	// v + 10^digits has digits+1 digits, the first a 1: the point.
	n := len(b)
	b = strconv.AppendInt(b, int64(v)+pow10[digits], 10)
	b[n] = '.'
	return b
}

var pow10 = [...]int64{3: 1e3, 6: 1e6, 9: 1e9}

// ParseTime parses an RFC 3339 timestamp (any offset, optional fraction).
func ParseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}
