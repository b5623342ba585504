package pipeline

import (
	"sync"
	"time"

	"github.com/securelog/securelog/pkg/wire"
)

// DefaultAnnounceInterval is how often, at most, the ingester writes its
// after-commit notices to JetStream: the appended announcement of each
// stream (SECURELOG_APPENDED) and its mark (SECURELOG_INGESTER). Each is
// a message the broker stores, an fsync with sync_interval always; one of
// each per committed batch cost the pipeline half its rate beside raw
// JetStream there (issue 13). The first notice after a quiet interval goes
// out at once, so an isolated event is announced as soon as it commits;
// under load the batches of one interval share one announcement per
// stream and one mark, so the sealer hears of entries at most this much
// later.
const DefaultAnnounceInterval = 50 * time.Millisecond

// notices coalesces the JetStream writes that follow the ingester's
// commits. add and mark record what a committed batch brings; the
// pending notices are written at once if the last write is at least
// interval ago, else by a timer at that point (leading and trailing
// edge), and by flush. Announcements of one stream merge into one
// AppendedMsg (count summed, first and last seqno spanning them), whose
// msg id names its last seqno as before; the mark written is always the
// newest. Writes happen in order under mu, never ahead of a commit.
type notices struct {
	interval  time.Duration
	announce  func(a *wire.AppendedMsg) // writes one announcement
	writeMark func()                    // writes the newest mark

	mu       sync.Mutex
	pending  map[string]*wire.AppendedMsg
	order    []string // streams of pending, in order of first notice
	markDue  bool
	last     time.Time   // when the last write happened
	timer    *time.Timer // the trailing write, while one is due
	now      func() time.Time
	afterFun func(time.Duration, func()) *time.Timer
}

func newNotices(interval time.Duration, announce func(*wire.AppendedMsg), writeMark func()) *notices {
	return &notices{interval: interval, announce: announce, writeMark: writeMark,
		pending: map[string]*wire.AppendedMsg{}, now: time.Now, afterFun: time.AfterFunc}
}

// add records the announcements of one committed batch (by stream) and
// that the mark moved.
func (n *notices) add(appended map[string]*wire.AppendedMsg, order []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range order {
		a := appended[s]
		if a == nil {
			continue
		}
		p := n.pending[s]
		if p == nil {
			c := *a
			n.pending[s] = &c
			n.order = append(n.order, s)
			continue
		}
		mergeAppended(p, a)
	}
	n.markDue = true
	n.kickLocked()
}

// mergeAppended folds a into p (same stream): counts add up, the seqnos
// span both, and the last entry hash is the newer one's.
func mergeAppended(p, a *wire.AppendedMsg) {
	p.Count += a.Count
	if a.FirstSeqno < p.FirstSeqno {
		p.FirstSeqno = a.FirstSeqno
	}
	if a.LastSeqno > p.LastSeqno {
		p.LastSeqno, p.LastEntryHash = a.LastSeqno, a.LastEntryHash
	}
}

// mark records that the mark moved (a batch with no announcement).
func (n *notices) mark() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.markDue = true
	n.kickLocked()
}

// kickLocked writes now or arms the trailing write.
func (n *notices) kickLocked() {
	if n.timer != nil {
		return // the trailing write takes this too
	}
	wait := n.interval - n.now().Sub(n.last)
	if wait <= 0 {
		n.writeLocked()
		return
	}
	n.timer = n.afterFun(wait, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.timer = nil
		n.writeLocked()
	})
}

// flush writes what is pending now (the ingester stops).
func (n *notices) flush() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
	n.writeLocked()
}

func (n *notices) writeLocked() {
	if len(n.order) == 0 && !n.markDue {
		return
	}
	for _, s := range n.order {
		n.announce(n.pending[s])
		delete(n.pending, s)
	}
	n.order = n.order[:0]
	if n.markDue {
		n.markDue = false
		n.writeMark()
	}
	n.last = n.now()
}
