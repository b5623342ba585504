package securelog

import (
	"time"

	"github.com/securelog/securelog/pkg/wire"
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
	b = wire.AppendTimeFraction(b, t.Nanosecond())
	b = append(b, "+00:00"...)
	s.buf = b
	return string(b)
}
