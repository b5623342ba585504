package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/batch"
	"github.com/securelog/securelog/pkg/wire"
)

// How the ingester notices a starved consumer (see catchUp).
const (
	// catchUpCheck is how often the catch-up reader looks at the feed.
	catchUpCheck = 250 * time.Millisecond
	// catchUpAfter is how long the feed must have been silent before the
	// catch-up reader asks the stream for messages directly.
	catchUpAfter = 500 * time.Millisecond
	// catchUpWindow is how many stream-message reads one catch-up round
	// has in flight.
	catchUpWindow = 128
	// catchUpPoll is the wait between catch-up rounds that found nothing
	// new while the consumer is still silent.
	catchUpPoll = 50 * time.Millisecond
)

// feedLimit is how many parsed messages the feed queues before its
// producers wait for the committer.
func feedLimit(maxBatch int) int { return 4 * maxBatch }

// errFeedStopped fails the batches still queued when consume returns:
// nothing is committed after it (the position stays at the last commit).
var errFeedStopped = errors.New("ingester feed stopped")

// feed is what the consumer and the catch-up reader share during one
// consume run. Both take messages from the stream in stream order; a
// sequence taken by one is skipped by the other (last). What they take
// goes to securelog's one batching primitive, batch.Group: a batch is cut
// at MaxBatch messages or BatchWait after its first message, whichever
// comes first (messages that queued while the previous batch committed go
// at once), at most feedLimit messages wait (the takers then wait for
// room), and batches commit one at a time, in stream order, on the
// group's goroutine. The first error of a taker or of a commit stops the
// feed: consume returns it, and no later batch commits.
type feed struct {
	g     *batch.Group[inItem, struct{}]
	limit int
	after time.Duration // catchUpAfter (tests shorten or lengthen it)

	mu     sync.Mutex // held while taking: submissions stay in stream order
	lastAt time.Time  // when the last item was taken
	// last is the highest stream sequence taken (either path), written
	// under mu. It and the consumer's marks are atomic so that the
	// consumer's deliveries of sequences already taken never wait for mu
	// (held by a taker waiting for room): a consumer replaying a burst the
	// catch-up reader took would fall behind and its subscription drop.
	last       atomic.Uint64
	consumerAt atomic.Int64  // when the consumer last delivered anything (Unix ns)
	consumed   atomic.Uint64 // highest stream sequence the consumer delivered

	failOnce sync.Once
	err      error         // the error that stopped the feed
	failed   chan struct{} // closed once err is set
}

// newFeed returns a feed positioned after stream sequence pos whose
// batches commit is called with, in order.
func newFeed(pos uint64, maxBatch int, wait time.Duration, commit func([]inItem) error) *feed {
	now := time.Now()
	f := &feed{limit: feedLimit(maxBatch), after: catchUpAfter, lastAt: now, failed: make(chan struct{})}
	f.last.Store(pos)
	f.consumerAt.Store(now.UnixNano())
	f.g = batch.NewGroup(func(items []inItem) ([]struct{}, error) {
		select {
		case <-f.failed:
			return nil, f.err
		default:
		}
		if err := commit(items); err != nil {
			f.fail(err)
			return nil, err
		}
		return make([]struct{}, len(items)), nil // zero-size: no allocation
	}, maxBatch, f.limit).WithWait(wait)
	return f
}

// fail records the error that stops the feed (the first one wins).
func (f *feed) fail(err error) {
	f.failOnce.Do(func() {
		f.err = err
		close(f.failed)
	})
}

// stop ends the feed after its takers stopped: queued batches commit
// nothing; it returns once the batch being committed is done.
func (f *feed) stop() {
	f.fail(errFeedStopped)
	f.g.Wait()
}

// fromConsumer notes a consumer delivery of seq and reports whether it is
// new (not yet taken by the catch-up reader).
func (f *feed) fromConsumer(seq uint64) bool {
	f.consumerAt.Store(time.Now().UnixNano())
	if seq > f.consumed.Load() {
		f.consumed.Store(seq) // the consumer's one goroutine writes it
	}
	return seq > f.last.Load() // push checks again under mu
}

// push submits it unless its sequence was already taken, waiting while
// the feed is full; it returns false if ctx ended first.
func (f *feed) push(ctx context.Context, it inItem) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if it.seq <= f.last.Load() {
		return true
	}
	if f.g.GoContext(ctx, it, func(struct{}, error) {}) != nil {
		return false
	}
	f.last.Store(it.seq)
	f.lastAt = time.Now()
	return true
}

// starved reports whether neither the consumer nor the catch-up reader
// delivered anything for d while there is room to queue, and the next
// stream sequence to read.
func (f *feed) starved(d time.Duration) (bool, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	quiet := time.Since(f.lastAt) >= d && time.Since(time.Unix(0, f.consumerAt.Load())) >= d
	return quiet && f.g.Queued() < f.limit, f.last.Load() + 1
}

// consumerSince reports whether the consumer delivered after t and has
// caught up to within a catch-up window of what was taken (after a burst
// it first replays everything the catch-up reader took, which brings
// nothing new), and the next stream sequence to read.
func (f *feed) consumerSince(t time.Time) (bool, uint64) {
	last := f.last.Load()
	return f.consumerAt.Load() > t.UnixNano() && f.consumed.Load()+catchUpWindow > last, last + 1
}

// errConsumerGap reports deliveries the consumer's subscription dropped
// (a slow-consumer drop after a burst): the ingester re-positions.
var errConsumerGap = errors.New("the consumer skipped deliveries")

// feed parses the consumer's messages into f, in order, until the
// iterator fails (the error stops f) or ctx ends. Parsing here overlaps
// it with the commit of the previous batch. The consumer
// acknowledges nothing and so never redelivers: its delivery sequence
// counts 1, 2, 3, ... and a jump means the client dropped messages.
func (in *Ingester) feed(ctx context.Context, it jetstream.MessagesContext, f *feed) {
	var delivered uint64
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.fail(fmt.Errorf("next message: %w", err))
			return
		}
		seq, d, stored, ok := ackSeqs(m.Reply())
		if !ok {
			md, err := m.Metadata()
			if err != nil {
				f.fail(fmt.Errorf("message metadata: %w", err))
				return
			}
			seq, d, stored = md.Sequence.Stream, md.Sequence.Consumer, md.Timestamp.UnixNano()
		}
		if d != delivered+1 {
			f.fail(fmt.Errorf("%w: delivery %d follows %d (stream sequence %d)", errConsumerGap, d, delivered, seq))
			return
		}
		delivered++
		if !f.fromConsumer(seq) {
			continue // the catch-up reader took it
		}
		item := in.parse(seq, m.Subject(), m.Headers().Get(wire.MsgIDHeader), m.Data())
		item.stored, item.taken = stored, time.Now().UnixNano()
		if !f.push(ctx, item) {
			return
		}
	}
}

// catchUp keeps the ingester committing while its consumer is starved:
// silent for catchUpAfter while the stream holds a message stored at least
// that long ago.
//
// nats-server runs a stream's storage and its consumers' deliveries on
// one loop, which takes the whole queue of received messages (up to
// 100,000) and stores all of them before it sends anything else. With
// sync_interval always every stored message is an fsync, so a burst of
// core-NATS publishes (`nats pub --count 100000`) stops all deliveries
// and heartbeats for as long as the disk needs to sync the burst — tens of
// seconds — although the messages become readable one by one as they are
// stored. When the feed has been silent for catchUpAfter, catchUp reads
// the stream directly (the JetStream API's message get, answered outside
// that loop) from the next sequence on, until the consumer delivers again
// near what was taken (not while it replays what was already taken).
// Both paths feed f in stream order; a sequence taken by one is skipped
// by the other. It returns when ctx ends.
func (in *Ingester) catchUp(ctx context.Context, f *feed) {
	t := time.NewTicker(catchUpCheck)
	defer t.Stop()
	var reading, empty bool // empty: the last read found nothing new
	var since time.Time     // when this catch-up began
	var seen uint64         // the sequence the last probe found waiting
	var seenAt time.Time    // when a probe first found it
	for {
		var from uint64
		if reading {
			var resumed bool
			if resumed, from = f.consumerSince(since); resumed {
				in.log.Info("ingester consumer delivers again; catch-up reads stop", "next_seq", from)
				reading = false
				continue
			}
		} else {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var starved bool
			if starved, from = f.starved(f.after); !starved {
				continue
			}
		}
		window := catchUpWindow
		if !reading || empty {
			// A probe: an idle pipeline costs one get per check, and so
			// does a poll while the consumer replays what was taken.
			window = 1
		}
		items, err := in.readFrom(ctx, from, window)
		if err != nil {
			if ctx.Err() == nil {
				in.log.Warn("catch-up read of the stream failed", "from_seq", from, "err", err)
			}
			reading = false
			continue
		}
		if empty = len(items) == 0; empty {
			if reading && !sleepCtx(ctx, catchUpPoll) {
				return
			}
			continue
		}
		if !reading {
			// A message stored less than f.after ago is on its way from
			// the consumer (the first of a new load after a quiet spell):
			// not a starved consumer. Its stored time is the broker's
			// clock; a probe that keeps finding it for f.after counts too.
			if it := items[0]; it.seq != seen {
				seen, seenAt = it.seq, time.Now()
			}
			stored := time.Unix(0, items[0].stored)
			if (items[0].stored == 0 || time.Since(stored) < f.after) && time.Since(seenAt) < f.after {
				continue
			}
			reading, since = true, time.Now()
			in.m.CatchUps.Inc()
			in.log.Warn("ingester consumer is silent while the stream holds newer messages (the broker is busy storing a burst?); reading them directly",
				"stream", in.cfg.Stream, "from_seq", from)
		}
		in.m.CatchUpRead.Add(float64(len(items)))
		for _, it := range items {
			if !f.push(ctx, it) {
				return
			}
		}
	}
}

// msgGetReply is the JetStream API's answer to a message get.
type msgGetReply struct {
	Message *msgGetMessage `json:"message"`
	Error   *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// msgGetMessage is the message of a msgGetReply.
type msgGetMessage struct {
	Subject string    `json:"subject"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Hdrs    []byte    `json:"hdrs"`
	Data    []byte    `json:"data"`
}

// readFrom reads, with window gets in flight, the ingester's messages at
// stream sequences from.., in order: each get asks for the first message
// of the filter at or after one sequence. The run ends before the first
// sequence with nothing stored at or after it (later answers could skip a
// message stored in between).
//
// It uses the JetStream API's message get, one request per message, and
// not a batched direct get ($JS.API.DIRECT.GET with "batch"), although
// that costs 27 instead of 66 µs of CPU per message: nats-server sends a
// direct get's replies through the stream's internal loop, which sends
// nothing while it stores a burst — the very time catch-up reads are for
// (TestBurstNoStall stalled with them).
func (in *Ingester) readFrom(ctx context.Context, from uint64, window int) ([]inItem, error) {
	subject := "$JS.API.STREAM.MSG.GET." + in.cfg.Stream
	replies := make([]msgGetReply, window)
	errs := make([]error, window)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second) // one bound for the round
	defer cancel()
	var wg sync.WaitGroup
	for i := range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fmt.Appendf(nil, `{"seq":%d,"next_by_subj":%q}`, from+uint64(i), in.cfg.FilterSubject)
			m, err := in.cfg.Conn.RequestWithContext(rctx, subject, req)
			if err == nil {
				err = parseMsgGetReply(m.Data, &replies[i])
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var items []inItem
	last := from - 1
	for i := range window {
		if errs[i] != nil {
			if len(items) > 0 {
				break // use what precedes it
			}
			return nil, fmt.Errorf("get message at or after %d: %w", from+uint64(i), errs[i])
		}
		r := &replies[i]
		if r.Error != nil {
			if r.Error.Code == 404 {
				break // nothing stored at or after this sequence yet
			}
			if len(items) > 0 {
				break
			}
			return nil, fmt.Errorf("get message at or after %d: %d %s", from+uint64(i), r.Error.Code, r.Error.Description)
		}
		m := r.Message
		if m == nil || m.Seq <= last {
			continue // the same message as the previous get
		}
		last = m.Seq
		var msgID string
		if len(m.Hdrs) > 0 {
			if h, err := nats.DecodeHeadersMsg(m.Hdrs); err == nil {
				msgID = h.Get(wire.MsgIDHeader)
			}
		}
		it := in.parse(m.Seq, m.Subject, msgID, m.Data)
		it.stored, it.taken = m.Time.UnixNano(), time.Now().UnixNano()
		items = append(items, it)
	}
	return items, nil
}
