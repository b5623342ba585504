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
	if ns := t.Nanosecond(); ns != 0 {
		digits, v := 9, ns
		switch {
		case ns%1_000_000 == 0:
			digits, v = 3, ns/1_000_000
		case ns%1_000 == 0:
			digits, v = 6, ns/1_000
		}
		s := strconv.Itoa(v)
		b = append(b, '.')
		for i := len(s); i < digits; i++ {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return string(append(b, "+00:00"...))
}

// ParseTime parses an RFC 3339 timestamp (any offset, optional fraction).
func ParseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}
