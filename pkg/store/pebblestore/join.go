package pebblestore

import (
	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/wire"
)

// group is index ranges merged in the filter's order: an entry is in the
// group when it is in any of them (the types under a type prefix).
type group []*source

// head is the group's first record in order, or nil when it is exhausted.
func (g group) head(f query.Filter) *source {
	var best *source
	for _, src := range g {
		if src.ok && (best == nil || f.Before(src.pos, best.pos)) {
			best = src
		}
	}
	return best
}

// seek moves every range of the group to its first record that is not
// before target in order.
func (g group) seek(f query.Filter, target query.Position) {
	for _, src := range g {
		if src.ok && f.Before(src.pos, target) {
			src.seekTo(target)
		}
	}
}

// advance steps the ranges whose record is at pos.
func (g group) advance(pos query.Position) {
	for _, src := range g {
		if src.ok && src.pos == pos {
			src.step()
		}
	}
}

// nextMatch returns the next position in order that every group holds
// (a leapfrog join: each group that is behind the furthest head seeks to
// it), with the severity its index records carry, and moves past it. With
// one group it is the group's next record.
func nextMatch(groups []group, f query.Filter) (query.Position, wire.Severity, bool) {
	for {
		var target *source
		for _, g := range groups {
			h := g.head(f)
			if h == nil {
				return query.Position{}, 0, false
			}
			if target == nil || f.Before(target.pos, h.pos) {
				target = h
			}
		}
		pos, sev, behind := target.pos, target.sev, false
		for _, g := range groups {
			if h := g.head(f); h.pos != pos {
				g.seek(f, pos)
				behind = true
			}
		}
		if !behind {
			for _, g := range groups {
				g.advance(pos)
			}
			return pos, sev, true
		}
	}
}
