package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/securelog/securelog/pkg/batch"
	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/wire"
)

// chunkBytes is about how many bytes of entries one core decodes at a time.
const chunkBytes = 1 << 20

// chunkPool recycles the second pass's read buffers.
var chunkPool = sync.Pool{New: func() any { return new([]byte) }}

// chunk is a run of whole entry objects of the bundle, found by the first
// pass, that the second pass decodes on one core.
type chunk struct {
	off   int64  // file offset of the chunk's first object
	first uint64 // index of that object in the entries array
}

var _ interface {
	EntryBatches(context.Context, string, func(*chain.Batch) bool) error
} = (*Reader)(nil)

// fileScan reads a file through a sliding buffer.
type fileScan struct {
	ra   io.ReaderAt
	end  int64 // file size
	buf  []byte
	base int64 // file offset of buf[0]
	i    int   // cursor in buf
}

// fill reads more of the file after buf, first dropping the bytes before
// keep (≤ s.i); it reports false at the end of the file.
func (s *fileScan) fill(keep int) (bool, error) {
	next := s.base + int64(len(s.buf))
	if next >= s.end {
		return false, nil
	}
	n := copy(s.buf, s.buf[keep:])
	s.buf, s.base, s.i = s.buf[:n], s.base+int64(keep), s.i-keep
	if cap(s.buf)-n < chunkBytes/2 {
		nb := make([]byte, n, 2*cap(s.buf)+chunkBytes)
		copy(nb, s.buf)
		s.buf = nb
	}
	m := int(min(int64(cap(s.buf)-n), s.end-next))
	k, err := s.ra.ReadAt(s.buf[n:n+m], next)
	if k < m && err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	s.buf = s.buf[:n+k]
	return k > 0, nil
}

// peek skips whitespace and returns the byte at the cursor (false at the
// end of the file).
func (s *fileScan) peek() (byte, bool, error) {
	for {
		s.i = skipWS(s.buf, s.i)
		if s.i < len(s.buf) {
			return s.buf[s.i], true, nil
		}
		more, err := s.fill(s.i)
		if err != nil || !more {
			return 0, false, err
		}
	}
}

// value moves the cursor past the object or array starting at it.
func (s *fileScan) value() (bool, error) {
	for {
		if end := scanValue(s.buf, s.i); end >= 0 {
			s.i = end
			return true, nil
		}
		more, err := s.fill(s.i)
		if err != nil || !more {
			return false, err
		}
	}
}

func (s *fileScan) offset() int64 { return s.base + int64(s.i) }

// scanEntries is the first pass over the entries array: from off (just
// after the member name "entries") it checks that the value is an array of
// objects, counts them and records chunk boundaries, and returns the file
// offset just past the array. The objects' contents are checked when they
// are decoded (Entries).
func (r *Reader) scanEntries(off int64) (int64, error) {
	s := &fileScan{ra: r.ra, end: r.size, base: off, buf: make([]byte, 0, chunkBytes)}
	expect := func(want byte, what string) error {
		c, ok, err := s.peek()
		switch {
		case err != nil:
			return fmt.Errorf("bundle: entries: %w", err)
		case !ok:
			return fmt.Errorf("%s: unexpected end of JSON input", what)
		case c != want:
			return fmt.Errorf("%s: expected '%c', got %q (at byte %d)", what, want, c, s.offset())
		}
		s.i++
		return nil
	}
	if err := expect(':', "bundle: entries"); err != nil {
		return 0, err
	}
	if err := expect('[', "bundle: entries"); err != nil {
		return 0, err
	}
	if c, ok, err := s.peek(); err != nil {
		return 0, fmt.Errorf("bundle: entries: %w", err)
	} else if ok && c == ']' {
		r.entriesEnd = s.offset()
		s.i++
		return s.offset(), nil
	}
	for {
		c, ok, err := s.peek()
		if err != nil {
			return 0, fmt.Errorf("bundle: entries[%d]: %w", r.entries, err)
		}
		if !ok {
			return 0, fmt.Errorf("bundle: entries[%d]: unexpected end of JSON input", r.entries)
		}
		if c != '{' {
			return 0, fmt.Errorf("bundle: entries[%d]: not a JSON object", r.entries)
		}
		if o := s.offset(); len(r.chunks) == 0 || o-r.chunks[len(r.chunks)-1].off >= chunkBytes {
			r.chunks = append(r.chunks, chunk{off: o, first: r.entries})
		}
		if ok, err := s.value(); err != nil || !ok {
			if err == nil {
				err = errors.New("unexpected end of JSON input")
			}
			return 0, fmt.Errorf("bundle: entries[%d]: %w", r.entries, err)
		}
		r.entries++
		if c, ok, err = s.peek(); err != nil {
			return 0, fmt.Errorf("bundle: entries: %w", err)
		}
		switch {
		case ok && c == ',':
			s.i++
		case ok && c == ']':
			r.entriesEnd = s.offset()
			s.i++
			return s.offset(), nil
		case ok:
			return 0, fmt.Errorf("bundle: entries[%d]: invalid character %q after an entry (at byte %d)", r.entries-1, c, s.offset())
		default:
			return 0, fmt.Errorf("bundle: entries: unexpected end of JSON input")
		}
	}
}

// EntryBatches hands the bundle's entries over in chunks (audit.BatchSource)
// whose Fill decodes them, so several cores decode and hash while the audit
// checks in order. A row that does not decode is an error naming its index.
func (r *Reader) EntryBatches(ctx context.Context, stream string, send func(*chain.Batch) bool) error {
	if err := r.checkStream(stream); err != nil {
		return err
	}
	for ci, c := range r.chunks {
		end, n := r.entriesEnd, r.entries-c.first
		if ci+1 < len(r.chunks) {
			end, n = r.chunks[ci+1].off, r.chunks[ci+1].first-c.first
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		bp := chunkPool.Get().(*[]byte)
		if int64(cap(*bp)) < end-c.off {
			*bp = make([]byte, end-c.off)
		}
		buf := (*bp)[:end-c.off]
		if k, err := r.ra.ReadAt(buf, c.off); k < len(buf) {
			return fmt.Errorf("bundle: entries[%d]: %w", c.first, err)
		}
		first := c.first
		if !send(&chain.Batch{Fill: func(b *chain.Batch) error {
			defer chunkPool.Put(bp) // the rows hold copies, not buf
			return fillChunk(b, buf, first, n)
		}}) {
			return nil
		}
	}
	return nil
}

// fillChunk decodes the n entry objects of buf (separated by commas and
// whitespace), the first being entries[first].
func fillChunk(b *chain.Batch, buf []byte, first, n uint64) error {
	var d wire.EntryRowDecoder
	b.Rows = make([]wire.EntryRow, 0, n)
	i := 0
	for k := first; ; k++ {
		i = skipWS(buf, i)
		if i < len(buf) && buf[i] == ',' && k > first {
			i = skipWS(buf, i+1)
		}
		if i >= len(buf) {
			if got := uint64(len(b.Rows)); got != n {
				return fmt.Errorf("bundle: entries: read %d rows from byte range of entries[%d], the first pass counted %d (file changed?)", got, first, n)
			}
			return nil
		}
		if buf[i] != '{' {
			return fmt.Errorf("bundle: entries[%d]: not a JSON object (file changed?)", k)
		}
		b.Rows = append(b.Rows, wire.EntryRow{})
		end, err := d.Next(buf, i, &b.Rows[len(b.Rows)-1])
		if err != nil {
			b.Rows = b.Rows[:len(b.Rows)-1]
			return fmt.Errorf("bundle: entries[%d]: %w", k, err)
		}
		i = end
	}
}

// Entries streams the bundle's entry rows in file order, decoded on every
// core. A row that does not decode is an error naming its index.
func (r *Reader) Entries(ctx context.Context, stream string, fn func(wire.EntryRow) error) error {
	type unit struct {
		b   chain.Batch
		err error
	}
	var n uint64
	err := batch.Ordered(ctx, runtime.GOMAXPROCS(0), func(send func(*unit) bool) error {
		return r.EntryBatches(ctx, stream, func(b *chain.Batch) bool { return send(&unit{b: *b}) })
	}, func(u *unit) {
		u.err = u.b.Fill(&u.b)
	}, func(u *unit) error {
		for _, row := range u.b.Rows {
			if err := fn(row); err != nil {
				return err
			}
			n++
		}
		return u.err
	})
	if err != nil {
		return err
	}
	if n != r.entries {
		return fmt.Errorf("bundle: entries: read %d rows, the first pass counted %d (file changed?)", n, r.entries)
	}
	return nil
}
