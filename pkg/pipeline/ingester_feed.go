package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// feedLimit is how many parsed messages the feed buffers before its
// producers wait for the committer.
func feedLimit(maxBatch int) int { return 4 * maxBatch }

// feedBuf holds the parsed messages taken from the stream (by the consumer
// or the catch-up reader) that collect has not yet taken: appended in
// stream order, taken a batch at a time.
type feedBuf struct {
	mu         sync.Mutex
	items      []inItem
	first      time.Time // when items[0] was taken
	last       uint64    // highest stream sequence taken (either path)
	lastAt     time.Time // when the last item was taken
	consumerAt time.Time // when the consumer last delivered anything
	err        error     // the error that stopped the feeder
	limit      int       // most buffered items (0: unbounded)
	batch      int       // collect's batch size: wake it when reached
	space      chan struct{}
	signal     chan struct{}
}

// newFeedBuf returns a feed positioned after stream sequence pos.
func newFeedBuf(pos uint64, limit, batch int) *feedBuf {
	now := time.Now()
	return &feedBuf{items: make([]inItem, 0, max(64, batch)), last: pos, lastAt: now, consumerAt: now, limit: limit, batch: batch,
		space: make(chan struct{}), signal: make(chan struct{}, 1)}
}

func (fb *feedBuf) poke() {
	select {
	case fb.signal <- struct{}{}:
	default:
	}
}

// fail records the error that stops the feed; collect returns it.
func (fb *feedBuf) fail(err error) {
	fb.mu.Lock()
	if fb.err == nil {
		fb.err = err
	}
	fb.mu.Unlock()
	fb.poke()
}

// fromConsumer notes a consumer delivery of seq and reports whether it is
// new (not yet taken by the catch-up reader).
func (fb *feedBuf) fromConsumer(seq uint64) bool {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.consumerAt = time.Now()
	return seq > fb.last
}

// push appends it unless its sequence was already taken, waiting while
// the buffer is full; it returns false if stop closed first.
func (fb *feedBuf) push(it inItem, stop <-chan struct{}) bool {
	for {
		fb.mu.Lock()
		if it.seq <= fb.last {
			fb.mu.Unlock()
			return true
		}
		if fb.limit <= 0 || len(fb.items) < fb.limit {
			now := time.Now()
			if len(fb.items) == 0 {
				fb.first = now
			}
			fb.items = append(fb.items, it)
			fb.last, fb.lastAt = it.seq, now
			// collect waits for the first message, then for a full batch
			// or its timer: no need to wake it for every message.
			wake := len(fb.items) == 1 || len(fb.items) == fb.batch
			fb.mu.Unlock()
			if wake {
				fb.poke()
			}
			return true
		}
		space := fb.space
		fb.mu.Unlock()
		select {
		case <-space:
		case <-stop:
			return false
		}
	}
}

// freed wakes producers waiting for space; fb.mu is held.
func (fb *feedBuf) freed() {
	if fb.space != nil {
		close(fb.space)
		fb.space = make(chan struct{})
	}
}

// starved reports whether neither the consumer nor the catch-up reader
// delivered anything for d while there is room to buffer, and the next
// stream sequence to read.
func (fb *feedBuf) starved(d time.Duration) (bool, uint64) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	quiet := time.Since(fb.lastAt) >= d && time.Since(fb.consumerAt) >= d
	return quiet && (fb.limit <= 0 || len(fb.items) < fb.limit), fb.last + 1
}

// consumerSince reports whether the consumer delivered anything after t,
// and the next stream sequence to read.
func (fb *feedBuf) consumerSince(t time.Time) (bool, uint64) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.consumerAt.After(t), fb.last + 1
}

// errConsumerGap reports deliveries the consumer's subscription dropped
// (a slow-consumer drop after a burst): the ingester re-positions.
var errConsumerGap = errors.New("the consumer skipped deliveries")

// feed parses the consumer's messages into fb, in order, until the
// iterator fails (the error is passed on) or stop is closed. Parsing here
// overlaps it with the commit of the previous batch. The consumer
// acknowledges nothing and so never redelivers: its delivery sequence
// counts 1, 2, 3, ... and a jump means the client dropped messages.
func (in *Ingester) feed(ctx context.Context, it jetstream.MessagesContext, fb *feedBuf, stop <-chan struct{}) {
	var delivered uint64
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		select {
		case <-stop:
			return
		default:
		}
		if err != nil {
			fb.fail(fmt.Errorf("next message: %w", err))
			return
		}
		seq, d, ok := ackSeqs(m.Reply())
		if !ok {
			md, err := m.Metadata()
			if err != nil {
				fb.fail(fmt.Errorf("message metadata: %w", err))
				return
			}
			seq, d = md.Sequence.Stream, md.Sequence.Consumer
		}
		if d != delivered+1 {
			fb.fail(fmt.Errorf("%w: delivery %d follows %d (stream sequence %d)", errConsumerGap, d, delivered, seq))
			return
		}
		delivered++
		if !fb.fromConsumer(seq) {
			continue // the catch-up reader took it
		}
		item := in.parse(seq, m.Subject(), m.Headers().Get(wire.MsgIDHeader), m.Data())
		if !fb.push(item, stop) {
			return
		}
	}
}

// catchUp keeps the ingester committing while its consumer is starved.
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
// that loop) from the next sequence on, until the consumer delivers again.
// Both paths feed fb in stream order; a sequence taken by one is skipped
// by the other.
func (in *Ingester) catchUp(ctx context.Context, fb *feedBuf, stop <-chan struct{}) {
	t := time.NewTicker(catchUpCheck)
	defer t.Stop()
	var reading bool
	var since time.Time // when this catch-up began
	for {
		var from uint64
		if reading {
			var resumed bool
			if resumed, from = fb.consumerSince(since); resumed {
				in.log.Info("ingester consumer delivers again; catch-up reads stop", "next_seq", from)
				reading = false
				continue
			}
		} else {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var starved bool
			if starved, from = fb.starved(catchUpAfter); !starved {
				continue
			}
		}
		window := catchUpWindow
		if !reading {
			window = 1 // a probe: an idle pipeline costs one get per check
		}
		items, err := in.readFrom(ctx, from, window)
		if err != nil {
			if ctx.Err() == nil {
				in.log.Warn("catch-up read of the stream failed", "from_seq", from, "err", err)
			}
			reading = false
			continue
		}
		if len(items) == 0 {
			if reading && !sleepStop(ctx, stop, catchUpPoll) {
				return
			}
			continue
		}
		if !reading {
			reading, since = true, time.Now()
			in.m.CatchUps.Inc()
			in.log.Warn("ingester consumer is silent while the stream holds newer messages (the broker is busy storing a burst?); reading them directly",
				"stream", in.cfg.Stream, "from_seq", from)
		}
		in.m.CatchUpRead.Add(float64(len(items)))
		for _, it := range items {
			if !fb.push(it, stop) {
				return
			}
		}
	}
}

// sleepStop waits d; it reports false if ctx ended or stop closed first.
func sleepStop(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// msgGetReply is the JetStream API's answer to a message get.
type msgGetReply struct {
	Message *struct {
		Subject string `json:"subject"`
		Seq     uint64 `json:"seq"`
		Hdrs    []byte `json:"hdrs"`
		Data    []byte `json:"data"`
	} `json:"message"`
	Error *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// readFrom reads, with window gets in flight, the ingester's messages at
// stream sequences from.., in order: each get asks for the first message
// of the filter at or after one sequence. The run ends before the first
// sequence with nothing stored at or after it (later answers could skip a
// message stored in between).
func (in *Ingester) readFrom(ctx context.Context, from uint64, window int) ([]inItem, error) {
	subject := "$JS.API.STREAM.MSG.GET." + in.cfg.Stream
	replies := make([]msgGetReply, window)
	errs := make([]error, window)
	var wg sync.WaitGroup
	for i := range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fmt.Appendf(nil, `{"seq":%d,"next_by_subj":%q}`, from+uint64(i), in.cfg.FilterSubject)
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			m, err := in.cfg.Conn.RequestWithContext(rctx, subject, req)
			if err == nil {
				err = json.Unmarshal(m.Data, &replies[i])
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
		items = append(items, in.parse(m.Seq, m.Subject, msgID, m.Data))
	}
	return items, nil
}

// collect waits for one message, then for MaxBatch messages or BatchWait
// after the first one was taken, whichever comes first. Messages that
// arrived while the previous batch committed are taken at once. Each batch
// is a fresh slice: the previous one is still referenced by its receipts.
func (in *Ingester) collect(ctx context.Context, fb *feedBuf) ([]inItem, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		fb.mu.Lock()
		if fb.err != nil {
			err := fb.err
			fb.mu.Unlock()
			return nil, err
		}
		n, first := len(fb.items), fb.first
		if n > 0 && (n >= in.cfg.MaxBatch || time.Since(first) >= in.cfg.BatchWait) {
			var batch []inItem
			if n <= in.cfg.MaxBatch {
				batch = fb.items
				fb.items = make([]inItem, 0, max(64, n))
			} else {
				// A backlog: the rest was taken before now, so it goes out
				// at once in the next batch.
				batch = append(make([]inItem, 0, in.cfg.MaxBatch), fb.items[:in.cfg.MaxBatch]...)
				rest := copy(fb.items, fb.items[in.cfg.MaxBatch:])
				clear(fb.items[rest:])
				fb.items = fb.items[:rest]
			}
			fb.freed()
			fb.mu.Unlock()
			return batch, nil
		}
		fb.mu.Unlock()
		var expired <-chan time.Time
		if n > 0 {
			if timer == nil {
				timer = time.NewTimer(time.Until(first.Add(in.cfg.BatchWait)))
			}
			expired = timer.C
		}
		select {
		case <-fb.signal:
		case <-expired:
		case <-ctx.Done():
			return nil, fmt.Errorf("next message: %w", ctx.Err())
		}
	}
}
