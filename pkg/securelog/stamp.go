package securelog

import (
	"strconv"
	"time"
)

// stamper formats entry timestamps exactly as wire.FormatTime does, reusing
// the date and time of day of the previous call within the same second:
// an append formats one timestamp per entry under the write lock, and most
// fall in the same second as the one before. Not safe for concurrent use;
// the Log's write lock guards it.
type stamper struct {
	sec    int64  // Unix second of prefix (valid when prefix is set)
	prefix []byte // "YYYY-MM-DDTHH:MM:SS" of sec, in UTC
	buf    []byte
}

// format returns wire.FormatTime(t).
func (s *stamper) format(t time.Time) string {
	t = t.UTC()
	if sec := t.Unix(); s.prefix == nil || sec != s.sec {
		s.sec = sec
		s.prefix = t.AppendFormat(s.prefix[:0], "2006-01-02T15:04:05")
	}
	b := append(s.buf[:0], s.prefix...)
	if ns := t.Nanosecond(); ns != 0 {
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
	}
	b = append(b, "+00:00"...)
	s.buf = b
	return string(b)
}

var pow10 = [...]int64{3: 1e3, 6: 1e6, 9: 1e9}
