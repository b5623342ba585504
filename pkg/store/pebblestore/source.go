package pebblestore

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/wire"
)

// source walks one run of an index range (index.go) in the filter's
// order: its records are lists of positions, keyed by their first one,
// that do not overlap, so walking the keys in order and each list in
// order yields the positions in order.
type source struct {
	it     *pebble.Iterator
	prefix []byte // the run's key prefix: range prefix ‖ run byte
	seek   []byte // seek key buffer
	f      query.Filter
	desc   bool

	elems []elem // the current list, ascending
	i     int    // index in elems of the current position
	valid bool   // the iterator is at a list

	ok  bool // pos and sev are the current record
	pos query.Position
	sev wire.Severity
}

// elem is one entry of a list.
type elem struct {
	pos query.Position
	sev wire.Severity
}

// openSource opens the run under prefix, positioned at its first position
// in the filter's order that the filter's time bounds and cursor allow.
func openSource(r pebble.Reader, prefix []byte, f query.Filter) (*source, error) {
	hi := upperBound(prefix)
	// A list starts at its first position: none at or after the upper
	// time bound holds a position below it.
	if f.HasUntil {
		hi = appendPos(append([]byte{}, prefix...), query.Position{Time: f.Until})
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	s := &source{it: it, prefix: prefix, f: f, desc: f.Order == query.Newest}
	var start query.Position
	var seek bool
	if !s.desc && f.HasSince {
		start, seek = query.Position{Time: f.Since}, true
	}
	if f.HasAfter && (!seek || f.After.Compare(start) > 0) && (!s.desc || !f.HasUntil || f.After.Time < f.Until) {
		start, seek = f.After, true
	}
	if seek {
		s.seekTo(start)
		return s, nil
	}
	if s.desc {
		s.valid = it.Last()
	} else {
		s.valid = it.First()
	}
	s.loadList()
	s.settle()
	return s, nil
}

// loadList decodes the list the iterator is at (valid) and points i at its
// first element in order. A malformed list is skipped.
func (s *source) loadList() {
	for s.valid {
		if s.decode() {
			if s.desc {
				s.i = len(s.elems) - 1
			} else {
				s.i = 0
			}
			return
		}
		s.nextList()
	}
}

// nextList moves the iterator to the next list in order.
func (s *source) nextList() {
	if s.desc {
		s.valid = s.it.Prev()
	} else {
		s.valid = s.it.Next()
	}
}

// decode reads the iterator's list into elems.
func (s *source) decode() bool {
	first, ok := decodePos(s.it.Key())
	v := s.it.Value()
	if !ok || len(v) == 0 {
		return false
	}
	s.elems = append(s.elems[:0], elem{first, wire.Severity(v[0])})
	v = v[1:]
	p := first
	for len(v) > 0 {
		ds, n := binary.Varint(v)
		if n <= 0 {
			return false
		}
		v = v[n:]
		dt, n := binary.Uvarint(v)
		if n <= 0 || len(v) == n {
			return false
		}
		p = query.Position{Time: p.Time + int64(dt), Seqno: p.Seqno + uint64(ds)}
		s.elems = append(s.elems, elem{p, wire.Severity(v[n])})
		v = v[n+1:]
	}
	return true
}

// settle makes the current element the first one in order, from i on,
// that the filter's bounds and cursor allow, moving to later lists as
// needed; ok is false once the run has no more.
func (s *source) settle() {
	for s.valid {
		if s.i < 0 || s.i >= len(s.elems) {
			s.nextList()
			s.loadList()
			continue
		}
		e := s.elems[s.i]
		if !s.f.InRange(e.pos) {
			if s.pastEnd(e.pos) {
				break
			}
			s.step1()
			continue
		}
		s.ok, s.pos, s.sev = true, e.pos, e.sev
		return
	}
	s.ok = false
}

// pastEnd reports whether p, out of the filter's range, lies beyond its
// end in order (so every later position does too).
func (s *source) pastEnd(p query.Position) bool {
	if s.desc {
		return s.f.HasSince && p.Time < s.f.Since
	}
	return s.f.HasUntil && p.Time >= s.f.Until
}

func (s *source) step1() {
	if s.desc {
		s.i--
	} else {
		s.i++
	}
}

// step moves to the next position in order.
func (s *source) step() {
	if !s.ok {
		return
	}
	s.step1()
	s.settle()
}

// nextsBeforeSeek is how many positions seekTo steps over before it
// seeks: in dense ranges the target is usually a few positions ahead, and
// a step is much cheaper than a seek.
const nextsBeforeSeek = 8

// seekTo moves to the first position that is not before target in the
// filter's order.
func (s *source) seekTo(target query.Position) {
	for n := 0; s.ok && n < nextsBeforeSeek; n++ {
		if !s.f.Before(s.pos, target) {
			return
		}
		s.step()
		if !s.ok {
			return // exhausted before target
		}
	}
	if s.ok && s.inList(target) {
		s.settle()
		return
	}
	// The list holding target's place starts at or before it: the last key
	// ≤ prefix‖target (keys under the prefix are exactly 16 bytes longer,
	// so every one of them ≤ it is < it‖0x00).
	s.seek = append(appendPos(append(s.seek[:0], s.prefix...), target), 0)
	s.valid = s.it.SeekLT(s.seek)
	if !s.valid {
		if s.desc {
			s.ok = false
			return
		}
		s.valid = s.it.First()
	}
	if !s.valid || !s.decode() {
		s.loadList() // skips a malformed list (or none left)
		s.settle()
		for s.ok && s.f.Before(s.pos, target) {
			s.step()
		}
		return
	}
	s.position(target)
	s.settle()
}

// inList points i at target's place in the current list when the list
// reaches it in order (its last element in order is not before target).
func (s *source) inList(target query.Position) bool {
	last := s.elems[0].pos
	if !s.desc {
		last = s.elems[len(s.elems)-1].pos
	}
	if s.f.Before(last, target) {
		return false
	}
	s.position(target)
	return true
}

// position points i at the first element of the current list that is
// not before target in order (past the list's end in order if none).
func (s *source) position(target query.Position) {
	if s.desc {
		s.i = len(s.elems) - 1
		for s.i >= 0 && s.elems[s.i].pos.Compare(target) > 0 {
			s.i--
		}
		return
	}
	s.i = 0
	for s.i < len(s.elems) && s.elems[s.i].pos.Compare(target) < 0 {
		s.i++
	}
}
