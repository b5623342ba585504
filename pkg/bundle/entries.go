package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
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
	// maxBuf, if not 0, bounds buf's growth: a value longer than that
	// fails with errTooLong.
	maxBuf int
}

// errTooLong is a guessed piece's scan giving up on a long value (see
// scanParallel).
var errTooLong = errors.New("value too long for a guessed piece")

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
		if s.maxBuf > 0 && 2*cap(s.buf)+chunkBytes > s.maxBuf {
			return false, errTooLong
		}
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
	if start := s.offset(); r.size-start >= parallelScanMin && scanWorkers() > 1 {
		return r.scanParallel(start, scanWorkers())
	}
	end, _, err := r.scanObjects(s, math.MaxInt64, &r.entries, &r.chunks)
	return end, err
}

// scanObjects is the first pass's loop over the entries array, from the
// cursor of s at an element (after '[' or a ','): it counts the objects in
// *entries (their index in the array, for errors) and records chunk
// boundaries in *chunks. It returns the offset just past the array, or,
// when the next element starts at limit or later, stop ≥ 0: that
// element's offset (end is then 0).
func (r *Reader) scanObjects(s *fileScan, limit int64, entries *uint64, chunks *[]chunk) (end, stop int64, err error) {
	for {
		c, ok, err := s.peek()
		if err != nil {
			return 0, -1, fmt.Errorf("bundle: entries[%d]: %w", *entries, err)
		}
		if o := s.offset(); ok && o >= limit {
			return 0, o, nil
		}
		if !ok {
			return 0, -1, fmt.Errorf("bundle: entries[%d]: unexpected end of JSON input", *entries)
		}
		if c != '{' {
			return 0, -1, fmt.Errorf("bundle: entries[%d]: not a JSON object", *entries)
		}
		if o := s.offset(); len(*chunks) == 0 || o-(*chunks)[len(*chunks)-1].off >= chunkBytes {
			*chunks = append(*chunks, chunk{off: o, first: *entries})
		}
		if ok, err := s.value(); err != nil || !ok {
			if err == nil {
				err = errors.New("unexpected end of JSON input")
			}
			return 0, -1, fmt.Errorf("bundle: entries[%d]: %w", *entries, err)
		}
		*entries++
		if c, ok, err = s.peek(); err != nil {
			return 0, -1, fmt.Errorf("bundle: entries: %w", err)
		}
		switch {
		case ok && c == ',':
			s.i++
		case ok && c == ']':
			r.entriesEnd = s.offset()
			s.i++
			return s.offset(), -1, nil
		case ok:
			return 0, -1, fmt.Errorf("bundle: entries[%d]: invalid character %q after an entry (at byte %d)", *entries-1, c, s.offset())
		default:
			return 0, -1, fmt.Errorf("bundle: entries: unexpected end of JSON input")
		}
	}
}

// parallelScanMin is the size of the rest of the file from which the first
// pass over the entries array runs on several cores (a variable for tests).
var parallelScanMin int64 = 8 * chunkBytes

// scanWorkers is how many cores the first pass uses (a variable for tests).
var scanWorkers = func() int { return runtime.GOMAXPROCS(0) }

// scanParallel is the first pass over the entries array, from the element
// at start, on several cores. The rest of the file is cut into pieces at
// guessed element starts (a '{' after a ','); each piece is scanned as if
// its guess were right, and the pieces are joined in order only where the
// scan of one ended exactly at the next one's start, in the state a
// single scan would be in there: then the next piece's objects are what a
// single scan finds. From the first piece that fails, does not reach the
// next start exactly, or is the last, the scan goes on alone from that
// piece's start, as a single scan (same objects, same errors).
func (r *Reader) scanParallel(start int64, workers int) (int64, error) {
	bounds := []int64{start}
	span := (r.size - start) / int64(workers)
	for k := 1; k < workers; k++ {
		if c, ok := r.guessElement(start + int64(k)*span); ok && c > bounds[len(bounds)-1] {
			bounds = append(bounds, c)
		}
	}
	type piece struct {
		entries    uint64
		chunks     []chunk
		end, stop  int64 // scanObjects' results
		err        error
		entriesEnd int64 // where the piece saw the array's ']'
	}
	pieces := make([]piece, len(bounds))
	scan := func(p *piece, k int) {
		limit := int64(math.MaxInt64)
		if k+1 < len(bounds) {
			limit = bounds[k+1]
		}
		pr := &Reader{ra: r.ra, size: r.size}
		s := &fileScan{ra: r.ra, end: r.size, base: bounds[k], buf: make([]byte, 0, chunkBytes)}
		if k > 0 {
			// A wrong guess can make the rest of the file look like one
			// value: do not buffer it (a piece that fails is scanned
			// again alone if it is reached).
			s.maxBuf = 8 * chunkBytes
		}
		p.end, p.stop, p.err = pr.scanObjects(s, limit, &p.entries, &p.chunks)
		p.entriesEnd = pr.entriesEnd
	}
	var wg sync.WaitGroup
	for k := 1; k < len(bounds); k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scan(&pieces[k], k)
		}()
	}
	scan(&pieces[0], 0)
	wg.Wait()
	k := 0
	for ; ; k++ {
		p := &pieces[k]
		if p.err != nil {
			break // scanned alone below, from its start: a single scan's error
		}
		for _, c := range p.chunks {
			r.chunks = append(r.chunks, chunk{off: c.off, first: r.entries + c.first})
		}
		r.entries += p.entries
		if p.stop < 0 { // the array ended in this piece
			r.entriesEnd = p.entriesEnd
			return p.end, nil
		}
		if k+1 >= len(bounds) || p.stop != bounds[k+1] {
			// It ran past the next guess (a wrong one): go on alone from
			// the element where it stopped.
			s := &fileScan{ra: r.ra, end: r.size, base: p.stop, buf: make([]byte, 0, chunkBytes)}
			end, _, err := r.scanObjects(s, math.MaxInt64, &r.entries, &r.chunks)
			return end, err
		}
		// Piece k+1 starts exactly at the element where this one stopped.
		r.joins++
	}
	// bounds[k] of the failed piece k is an element start in the true state
	// (k = 0, or piece k-1 stopped exactly there).
	s := &fileScan{ra: r.ra, end: r.size, base: bounds[k], buf: make([]byte, 0, chunkBytes)}
	end, _, err := r.scanObjects(s, math.MaxInt64, &r.entries, &r.chunks)
	return end, err
}

// guessElement returns the offset of the first '{' at or after off (within
// a probe window) whose previous byte other than JSON whitespace is ','.
// It is only a guess of where an element of the entries array starts.
func (r *Reader) guessElement(off int64) (int64, bool) {
	const probe = 64 << 10
	lo := max(off-16, 0)
	buf := make([]byte, min(probe, r.size-lo))
	n, _ := r.ra.ReadAt(buf, lo)
	buf = buf[:n]
	for i := int(off - lo); i < len(buf); i++ {
		j := bytes.IndexByte(buf[i:], '{')
		if j < 0 {
			return 0, false
		}
		i += j
		k := i - 1
		for k >= 0 && (buf[k] == ' ' || buf[k] == '\n' || buf[k] == '\t' || buf[k] == '\r') {
			k--
		}
		if k >= 0 && buf[k] == ',' {
			return lo + int64(i), true
		}
	}
	return 0, false
}

// EntryBatches hands the bundle's entries over in chunks (audit.BatchSource)
// whose Fill decodes them, so several cores decode and hash while the audit
// checks in order. A row that does not decode is an error naming its index.
// A row's PrevEntryHash may share the previous row's EntryHash bytes
// (wire.EntryRowDecoder.ShareLinks): the rows must not be modified.
func (r *Reader) EntryBatches(ctx context.Context, stream string, send func(*chain.Batch) bool) error {
	return r.entryBatches(ctx, stream, send, true)
}

// entryBatches is EntryBatches; share lets rows share bytes
// (wire.EntryRowDecoder.ShareLinks: the rows are only read).
func (r *Reader) entryBatches(ctx context.Context, stream string, send func(*chain.Batch) bool, share bool) error {
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
			return fillChunk(b, buf, first, n, share)
		}}) {
			return nil
		}
	}
	return nil
}

// fillChunk decodes the n entry objects of buf (separated by commas and
// whitespace), the first being entries[first]; share: see entryBatches.
func fillChunk(b *chain.Batch, buf []byte, first, n uint64, share bool) error {
	d := wire.EntryRowDecoder{ShareLinks: share}
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
		return r.entryBatches(ctx, stream, func(b *chain.Batch) bool { return send(&unit{b: *b}) }, false)
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
