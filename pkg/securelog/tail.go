package securelog

import (
	"context"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/wire"
)

// tailAnchor is the newest entry of a stream that this Log wrote or
// verified: the point from which rows written by anyone else are checked
// before the log chains onto them.
type tailAnchor struct {
	seqno uint64
	hash  []byte
}

// tailCheckWindow bounds, in seqnos, how far back a Log that has no anchor
// for a stream yet (a fresh process) verifies the stream's unsealed tail
// before chaining onto it. Sealed entries were checked when their segment
// was signed.
const tailCheckWindow = 4096

// verifyTail checks, before the log chains onto last (the stream's newest
// stored row), every row of the stream it did not write or verify itself
// (issue 9 item 1: the log never chains onto a row it did not write or
// verify). With an anchor, the rows after it must link from it and each
// hash to its stored entry hash, and the anchor row must be unchanged.
// Without one, the stream's unsealed tail (at most tailCheckWindow seqnos)
// is verified the same way. A failure halts the stream (HaltForgedEntry,
// or HaltRollback when the stream lost entries this log wrote).
// Called with l.mu held.
func (l *Log) verifyTail(ctx context.Context, stream string, last wire.EntryRow) error {
	a, anchored := l.anchors.get(stream)
	if anchored && a.seqno == last.Seqno && bytesEqual(a.hash, last.EntryHash) {
		return nil
	}
	if anchored && last.Seqno < a.seqno {
		return l.halt(stream, HaltRollback, &wire.ChainBrokenError{Seqno: a.seqno, Reason: fmt.Sprintf(
			"the stream's newest entry is seqno %d, but this log wrote or verified seqno %d: entries were removed (store rolled back?)", last.Seqno, a.seqno)})
	}
	from := a.seqno
	if !anchored {
		sealed, _, err := l.st.SegmentLastSeqno(ctx, stream)
		if err != nil {
			return storageErr(err, "segment last seqno of %q", stream)
		}
		from = max(sealed, 1)
		if last.Seqno > tailCheckWindow && from < last.Seqno-tailCheckWindow {
			from = last.Seqno - tailCheckWindow
		}
	}
	rows, err := l.st.Range(ctx, stream, from, last.Seqno)
	if err != nil {
		return storageErr(err, "range of %q", stream)
	}
	if len(rows) == 0 || rows[len(rows)-1].Seqno != last.Seqno {
		return storageErr(errors.New("stream changed while its tail was read"), "verify tail of %q", stream)
	}
	forged := func(err error) error {
		var cb *wire.ChainBrokenError
		if !errors.As(err, &cb) {
			err = &wire.ChainBrokenError{Seqno: last.Seqno, Reason: err.Error()}
		}
		return l.halt(stream, HaltForgedEntry, err)
	}
	first := rows[0]
	if anchored {
		if first.Seqno != a.seqno || !bytesEqual(first.EntryHash, a.hash) {
			return l.halt(stream, HaltRollback, &wire.ChainBrokenError{Seqno: a.seqno, Reason: fmt.Sprintf(
				"entry %d, which this log wrote or verified, is missing or changed", a.seqno)})
		}
	} else if h := chain.RowHash(first); !bytesEqual(h, first.EntryHash) {
		return forged(&wire.ChainBrokenError{Seqno: first.Seqno, Reason: fmt.Sprintf(
			"entry content does not match stored hash: recomputed=%s stored=%s", hexs(h), hexs(first.EntryHash))})
	}
	v := chain.NewVerifier(first.EntryHash)
	for _, r := range rows[1:] {
		if err := v.Next(r); err != nil {
			return forged(err)
		}
	}
	l.anchors.put(stream, tailAnchor{seqno: last.Seqno, hash: last.EntryHash})
	return nil
}

// isHalt reports whether err halts a stream.
func isHalt(err error) bool {
	var h *StreamHaltedError
	return errors.As(err, &h)
}
