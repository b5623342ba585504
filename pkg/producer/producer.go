// Package producer is the Go client of the securelog pipeline. It names
// the three acknowledgement levels of DECISIONS ("Acknowledgement levels"):
//
//   - accepted: JetStream stored the event (PublishAccepted, or
//     Future.Accepted). Not a commitment: the broker acknowledges before
//     fsync unless it runs with sync_interval: always.
//   - committed: the ingester chained the event into its store and fsynced
//     it (Publish + Future.Wait, or Append): it has a seqno and entry hash.
//     Only this level may be reported as durable.
//   - checkpointed: the event's segment is sealed, signed and, where
//     witnesses are configured, cosigned; where the log has a C2SP
//     witness policy, the event is also inside a checkpoint of the log's
//     tree that satisfies it (AwaitCheckpoint).
//
// Publish is pipelined: thousands of events can be in flight, each with a
// Future resolved by the ingester's commit receipts (securelog.committed.
// <stream>), matched by the event's Nats-Msg-Id. AwaitCheckpoint reads the
// log through its store RPC with a securelog.Reader (read-only: the same
// proof code as the log, none of the writer's machinery).
package producer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Defaults of Options.
const (
	// DefaultMaxPending bounds the asynchronous publishes awaiting their
	// JetStream acknowledgement.
	DefaultMaxPending = 4096
	// DefaultStallWait is how long Publish waits for room in the window.
	DefaultStallWait = 30 * time.Second
	// DefaultPollInterval is AwaitCheckpoint's fallback poll of the store.
	DefaultPollInterval = time.Second
	// DefaultLookupAfter is how long Wait trusts the receipt to come before
	// it looks the commit up.
	DefaultLookupAfter = 10 * time.Second
	// DefaultAckTimeout is how long a publish waits for JetStream's
	// acknowledgement before it is sent again under the same msg id.
	DefaultAckTimeout = 5 * time.Second
	// DefaultRepublishFor bounds how long after the first attempt an
	// unacknowledged event is still sent again: well inside the default
	// duplicates window of the ingester's stream (2 minutes), which is
	// what makes a repeat publish store the event once.
	DefaultRepublishFor = time.Minute
)

// Options configures a Client.
type Options struct {
	// Store is the store AwaitCheckpoint reads (usually a remote.Store over
	// HTTP or NATS; only its read side is used). Nil: the store RPC of the
	// stream's partition over the client's NATS connection (securelog.rpc
	// for the default partition), created on first use.
	Store store.ReadStore
	// Map is the partition map that routes each stream to its partition.
	// Nil: the SECURELOG_PARTITIONS bucket of the client's JetStream, read
	// on first use (without the bucket, every stream is in the default
	// partition).
	Map *partition.Map
	// MaxPending is the asynchronous publish window (DefaultMaxPending).
	MaxPending int
	// StallWait bounds the wait for room in the window (DefaultStallWait).
	StallWait time.Duration
	// PollInterval is AwaitCheckpoint's fallback poll (DefaultPollInterval),
	// and the period of Wait's commit lookups once LookupAfter has passed.
	PollInterval time.Duration
	// LookupAfter is how long Wait waits for a commit receipt before it
	// asks the ingester's commit index (DefaultLookupAfter; < 0 never).
	// Receipts are plain NATS messages: one can be missed (a reconnect, a
	// duplicate publish of an already committed event, an ingester crash
	// between commit and receipt); the lookup is durable.
	LookupAfter time.Duration
	// AckTimeout is how long a publish waits for JetStream's
	// acknowledgement (DefaultAckTimeout). A publish can be lost without
	// an error — a stream whose leader is being elected on a busy cluster
	// drops it — so one left unanswered is sent again under the same msg
	// id, which JetStream stores once within its duplicates window.
	AckTimeout time.Duration
	// RepublishFor bounds the repeats (DefaultRepublishFor): an event not
	// acknowledged this long after its first publish fails with an error
	// that says so. Keep it below the stream's duplicates window.
	RepublishFor time.Duration
	// Logger receives warnings (default slog.Default()).
	Logger *slog.Logger
}

// Event is one audit event.
type Event struct {
	Type     string
	Severity wire.Severity
	Producer string
	Payload  []byte
	// Encoding, if set, is stored as the entry's payload_encoding (public
	// streams only).
	Encoding *string
	// MsgID is the de-duplication id (Nats-Msg-Id); empty → a random id.
	// Re-publishing with the same id within the stream's duplicates window
	// (2 minutes by default) is stored once.
	MsgID string
}

// Committed is a committed event: its seqno and entry hash in the store.
type Committed struct {
	Stream    string   `json:"stream"`
	MsgID     string   `json:"msg_id,omitempty"`
	JSSeq     uint64   `json:"js_seq,omitempty"`
	Seqno     uint64   `json:"seqno"`
	EntryHash wire.Hex `json:"entry_hash"`
}

// RejectedError is an event the ingester refused (it went to the
// dead-letter subject securelog.dlq.<stream>).
type RejectedError struct {
	Stream, MsgID, Reason, Code string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("event %s on stream %q rejected: %s", e.MsgID, e.Stream, e.Reason)
}

// Client publishes events over one NATS connection. It is safe for
// concurrent use.
type Client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	opts Options
	log  *slog.Logger

	flush func() error // the subscription round trip (nc.Flush; tests hold it)
	subMu sync.Mutex   // serialises subscription set-ups (never needed by receipts)

	mu      sync.Mutex
	subs    map[string]*nats.Subscription // committed.<stream>
	pending map[futureKey][]*Future
	closed  bool

	rpcMu sync.Mutex
	rds   map[string]*securelog.Reader // per partition: AwaitCheckpoint's reads and proofs (checkpoint.go)
	rpcs  map[string]store.Store       // per partition, the remote stores the client opened itself

	mapMu sync.Mutex
	pmap  *partition.Map
	mapAt time.Time // when pmap was opened
}

type futureKey struct{ stream, msgID string }

// New returns a client over nc; nc stays owned by the caller.
func New(nc *nats.Conn, opts Options) (*Client, error) {
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.StallWait <= 0 {
		opts.StallWait = DefaultStallWait
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.LookupAfter == 0 {
		opts.LookupAfter = DefaultLookupAfter
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.RepublishFor <= 0 {
		opts.RepublishFor = DefaultRepublishFor
	}
	c := &Client{nc: nc, flush: nc.Flush, opts: opts, log: opts.Logger, subs: map[string]*nats.Subscription{}, pending: map[futureKey][]*Future{},
		rds: map[string]*securelog.Reader{}, rpcs: map[string]store.Store{}, pmap: opts.Map}
	if c.log == nil {
		c.log = slog.Default()
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(opts.MaxPending), jetstream.WithPublishAsyncTimeout(opts.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(c.onPubAck), jetstream.WithPublishAsyncErrHandler(c.onPubErr))
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	c.js = js
	return c, nil
}

// Future is the outcome of one Publish: resolved when the commit receipt
// for its msg id arrives (or the event is rejected, or the publish fails).
type Future struct {
	c        *Client
	key      futureKey
	accepted chan struct{}
	done     chan struct{}
	once     sync.Once
	part     wire.Partition // the stream's partition (its JetStream stream and lookups)
	msg      *nats.Msg      // what was published (sent again when unacknowledged)
	first    time.Time      // when it was first published
	attempts int            // publishes so far (guarded by Client.mu)
	answered bool           // JetStream acknowledged or refused it (guarded by Client.mu)
	jsSeq    uint64
	dup      bool
	res      Committed
	err      error
}

// MsgID returns the event's de-duplication id.
func (f *Future) MsgID() string { return f.key.msgID }

// Done is closed once the event is committed or failed. A caller that
// stops waiting on Done without a result must call Forget, or the client
// keeps the future until a receipt arrives (Wait forgets by itself when its
// context ends).
func (f *Future) Done() <-chan struct{} { return f.done }

// Forget stops tracking the future: a later receipt is ignored and the
// client's memory for it is released.
func (f *Future) Forget() { f.c.forget(f) }

// Result returns the outcome; call it after Done is closed.
func (f *Future) Result() (Committed, error) { return f.res, f.err }

// Accepted waits until JetStream acknowledged the event and returns its
// stream sequence (and whether it was a duplicate of an earlier publish).
// When the commit receipt overtook the JetStream acknowledgement, the
// sequence is the receipt's (duplicate then reads false).
func (f *Future) Accepted(ctx context.Context) (uint64, bool, error) {
	select {
	case <-f.accepted:
		return f.jsSeq, f.dup, nil
	case <-f.done:
		select {
		case <-f.accepted:
			return f.jsSeq, f.dup, nil
		default:
			if f.err != nil {
				return 0, false, f.err
			}
			return f.res.JSSeq, false, nil
		}
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
}

// Wait waits until the event is committed (or rejected) or ctx ends. On
// ctx end the future is forgotten: a later receipt is ignored.
//
// A duplicate publish (same msg id within the window, reported so by
// JetStream's acknowledgement) receives no receipt of its own: Wait asks
// the ingester's commit index at once and resolves to the original's
// commit (or polls it every PollInterval while the original is pending).
// Other missed receipts are looked up after LookupAfter.
func (f *Future) Wait(ctx context.Context) (Committed, error) {
	var lookup <-chan time.Time
	var poll *time.Ticker
	if d := f.c.opts.LookupAfter; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		lookup = t.C
	}
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	accepted := f.accepted
	for {
		select {
		case <-accepted:
			accepted = nil
			if !f.dup || f.c.opts.LookupAfter < 0 {
				continue
			}
			// JetStream dropped this publish as a duplicate: its original
			// may be committed already, and then no receipt will come. Ask
			// the commit index at once, then poll (issue 9 item 11).
			if f.lookup(ctx) {
				return f.res, f.err
			}
			if poll == nil {
				poll = time.NewTicker(f.c.opts.PollInterval)
				lookup = poll.C
			}
		case <-f.done:
			return f.res, f.err
		case <-ctx.Done():
			f.c.forget(f)
			return Committed{}, fmt.Errorf("waiting for commit of %s: %w", f.key.msgID, ctx.Err())
		case <-lookup:
			// No receipt yet: ask the ingester's durable commit index.
			if f.lookup(ctx) {
				return f.res, f.err
			}
			if poll == nil {
				poll = time.NewTicker(f.c.opts.PollInterval)
				lookup = poll.C
			}
		}
	}
}

// lookup resolves the future from the commit index if its outcome is known.
func (f *Future) lookup(ctx context.Context) bool {
	select {
	case <-f.accepted:
	default:
		return false // not even accepted by JetStream yet
	}
	// Each lookup is bounded: an unanswered request (an ingester that
	// died holding it) is asked again at the next poll.
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	r, err := f.c.LookupCommitIn(lctx, f.part, f.jsSeq)
	cancel()
	if err != nil {
		f.c.log.Debug("producer: commit lookup failed", "msg_id", f.key.msgID, "js_seq", f.jsSeq, "err", err)
		return false
	}
	switch r.Status {
	case wire.LookupCommitted:
		f.c.forget(f)
		f.resolve(Committed{Stream: r.Stream, MsgID: f.key.msgID, JSSeq: r.JSSeq, Seqno: r.Seqno, EntryHash: r.EntryHash}, nil)
		return true
	case wire.LookupNotCommitted:
		f.c.forget(f)
		f.resolve(Committed{}, &RejectedError{Stream: f.key.stream, MsgID: f.key.msgID,
			Reason: fmt.Sprintf("stream sequence %d was not committed (rejected to securelog.dlq.%s)", f.jsSeq, f.key.stream)})
		return true
	}
	return false
}

// lookupTimeout bounds one commit lookup of Wait.
const lookupTimeout = 5 * time.Second

// LookupCommit asks the default partition's ingester what JetStream
// message jsSeq of SECURELOG_IN became (wire.CommitLookupSubject).
func (c *Client) LookupCommit(ctx context.Context, jsSeq uint64) (wire.CommitLookupReply, error) {
	return c.LookupCommitIn(ctx, wire.Partition{}, jsSeq)
}

// LookupCommitIn asks partition p's ingester what message jsSeq of p's
// JetStream stream became (p.CommitLookupSubject()).
func (c *Client) LookupCommitIn(ctx context.Context, p wire.Partition, jsSeq uint64) (wire.CommitLookupReply, error) {
	req, _ := json.Marshal(wire.CommitLookup{JSSeq: jsSeq})
	m, err := c.nc.RequestWithContext(ctx, p.CommitLookupSubject(), req)
	if err != nil {
		return wire.CommitLookupReply{}, fmt.Errorf("commit lookup of stream sequence %d: %w", jsSeq, err)
	}
	var r wire.CommitLookupReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return r, fmt.Errorf("commit lookup of stream sequence %d: %w", jsSeq, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("commit lookup of stream sequence %d: %s", jsSeq, r.Error)
	}
	return r, nil
}

func (f *Future) resolve(res Committed, err error) {
	f.once.Do(func() {
		f.res, f.err = res, err
		close(f.done)
	})
}

// NewMsgID returns a random 128-bit message id.
func NewMsgID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Publish sends ev to securelog.in.<stream> asynchronously and returns a
// Future resolved at the committed level.
func (c *Client) Publish(ctx context.Context, stream string, ev Event) (*Future, error) {
	msg, key, part, err := c.message(ctx, stream, ev)
	if err != nil {
		return nil, err
	}
	if err := c.subscribe(stream); err != nil {
		return nil, err
	}
	f := &Future{c: c, key: key, part: part, msg: msg, first: time.Now(), attempts: 1, accepted: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("producer: client closed")
	}
	c.pending[key] = append(c.pending[key], f)
	c.mu.Unlock()
	wait := c.opts.StallWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, max(time.Until(dl), time.Millisecond))
	}
	if _, err := c.js.PublishMsgAsync(msg, jetstream.WithStallWait(wait)); err != nil {
		c.forget(f)
		return nil, fmt.Errorf("producer: publish to %s: %w", msg.Subject, err)
	}
	return f, nil
}

// PublishAccepted publishes ev and waits only for JetStream's
// acknowledgement (accepted, not committed). It returns the stream
// sequence.
func (c *Client) PublishAccepted(ctx context.Context, stream string, ev Event) (*jetstream.PubAck, error) {
	msg, _, _, err := c.message(ctx, stream, ev)
	if err != nil {
		return nil, err
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("producer: publish to %s: %w", msg.Subject, err)
	}
	return ack, nil
}

// Append sends ev as a request/reply append (securelog.append.<stream>) and
// returns once the ingester has fsynced it (committed).
func (c *Client) Append(ctx context.Context, stream string, ev Event) (Committed, error) {
	if err := wire.CheckStreamToken(stream); err != nil {
		return Committed{}, err
	}
	body, err := eventJSON(ev)
	if err != nil {
		return Committed{}, err
	}
	part, err := c.route(ctx, stream)
	if err != nil {
		return Committed{}, err
	}
	reply, err := c.nc.RequestWithContext(ctx, part.Subject(wire.KindAppend, stream), body)
	if err != nil {
		return Committed{}, fmt.Errorf("producer: append to %s: %w", stream, err)
	}
	var r wire.AppendReply
	if err := json.Unmarshal(reply.Data, &r); err != nil {
		return Committed{}, fmt.Errorf("producer: append reply: %w", err)
	}
	if r.Error != "" {
		return Committed{}, &RejectedError{Stream: stream, Reason: r.Error, Code: r.Code}
	}
	return Committed{Stream: stream, Seqno: r.Seqno, EntryHash: r.EntryHash}, nil
}

func eventJSON(ev Event) ([]byte, error) {
	if !ev.Severity.Valid() {
		return nil, wire.Invalidf("invalid severity ordinal %d", uint8(ev.Severity))
	}
	return marshalEventOf(ev.Type, ev.Severity, ev.Producer, ev.Payload, ev.Encoding), nil
}

func (c *Client) message(ctx context.Context, stream string, ev Event) (*nats.Msg, futureKey, wire.Partition, error) {
	if err := wire.CheckStreamToken(stream); err != nil {
		return nil, futureKey{}, wire.Partition{}, err
	}
	body, err := eventJSON(ev)
	if err != nil {
		return nil, futureKey{}, wire.Partition{}, err
	}
	part, err := c.route(ctx, stream)
	if err != nil {
		return nil, futureKey{}, wire.Partition{}, err
	}
	id := ev.MsgID
	if id == "" {
		id = NewMsgID()
	}
	msg := nats.NewMsg(part.Subject(wire.KindIn, stream))
	msg.Data = body
	msg.Header.Set(wire.MsgIDHeader, id)
	return msg, futureKey{stream, id}, part, nil
}

// subscribe makes sure the client receives stream's commit receipts before
// its first publish there. The subscription's round trip (Flush) runs
// under subMu only: c.mu, which every receipt needs, is never held across
// a network call.
func (c *Client) subscribe(stream string) error {
	if done, err := c.subscribed(stream); done || err != nil {
		return err
	}
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if done, err := c.subscribed(stream); done || err != nil {
		return err
	}
	sub, err := c.nc.Subscribe(wire.SubjectFor(wire.KindCommitted, stream), c.onReceipt)
	if err != nil {
		return fmt.Errorf("producer: subscribe commit receipts of %s: %w", stream, err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := c.flush(); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("producer: subscribe commit receipts of %s: %w", stream, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = sub.Unsubscribe()
		return errors.New("producer: client closed")
	}
	c.subs[stream] = sub
	return nil
}

// subscribed reports whether stream's receipts are already followed (or
// the client is closed: an error).
func (c *Client) subscribed(stream string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, errors.New("producer: client closed")
	}
	return c.subs[stream] != nil, nil
}

func (c *Client) onReceipt(m *nats.Msg) {
	stream, items, err := parseReceipt(m.Data)
	if err != nil {
		c.log.Warn("producer: malformed commit receipt", "subject", m.Subject, "err", err)
		return
	}
	defer releaseItems(items)
	type match struct {
		fs []*Future
		it *receiptItem
	}
	var matched []match
	c.mu.Lock()
	for i := range items {
		it := &items[i]
		if len(it.msgID) == 0 {
			continue
		}
		// The key is built in the index expression, so looking up the
		// items of other clients allocates nothing.
		if fs := c.pending[futureKey{stream, string(it.msgID)}]; fs != nil {
			delete(c.pending, fs[0].key)
			matched = append(matched, match{fs, it})
		}
	}
	c.mu.Unlock()
	for _, mt := range matched {
		it := mt.it
		for _, f := range mt.fs {
			if it.errMsg != "" {
				f.resolve(Committed{}, &RejectedError{Stream: stream, MsgID: f.key.msgID, Reason: it.errMsg})
				continue
			}
			f.resolve(Committed{Stream: stream, MsgID: f.key.msgID, JSSeq: it.jsSeq, Seqno: it.seqno, EntryHash: it.entryHash()}, nil)
		}
	}
}

func (c *Client) lookupLocked(m *nats.Msg) []*Future {
	_, stream, _ := wire.PartitionOf(wire.KindIn, m.Subject)
	return c.pending[futureKey{stream, m.Header.Get(wire.MsgIDHeader)}]
}

// onPubAck gives a JetStream acknowledgement to the oldest future of its
// msg id still awaiting one (publishes of one id are acknowledged in order).
func (c *Client) onPubAck(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	if f := c.unacked(m); f != nil {
		f.jsSeq, f.dup = ack.Sequence, ack.Duplicate
		close(f.accepted)
	}
}

func (c *Client) onPubErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	f := c.unacked(m)
	if f == nil {
		return
	}
	c.mu.Lock()
	n := f.attempts
	c.mu.Unlock()
	// A publish left unanswered, or in flight when the connection was
	// re-established (nats.go then fails every pending publish, stored or
	// not), is sent again at once. A repeat that finds no stream (its
	// leader is being elected, or it is being re-created) is tried again
	// after AckTimeout. A first publish with no stream fails at once:
	// nothing listens on the subject.
	timeout := errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrDisconnected)
	retry := timeout || (n > 1 && errors.Is(err, jetstream.ErrNoStreamResponse))
	if retry && time.Since(f.first) < c.opts.RepublishFor {
		// Called under the JetStream publisher's lock: publish again from
		// another goroutine.
		if timeout {
			go c.republish(f, err)
		} else {
			time.AfterFunc(c.opts.AckTimeout, func() { c.republish(f, err) })
		}
		return
	}
	if retry {
		err = fmt.Errorf("no acknowledgement from JetStream for %d publishes over %v (is the stream's leader up? the event may be stored: look up msg id %s): %w",
			n, time.Since(f.first).Round(time.Millisecond), f.key.msgID, err)
	}
	c.forget(f)
	f.resolve(Committed{}, fmt.Errorf("producer: publish to %s not accepted: %w", m.Subject, err))
}

// republish sends an unacknowledged event again under its msg id: the
// first publish may have been lost on its way to the stream's leader, or
// its acknowledgement on the way back (then JetStream answers
// "duplicate" and Wait asks the commit index). Nothing is sent for a
// future that was resolved or forgotten meanwhile.
func (c *Client) republish(f *Future, why error) {
	c.mu.Lock()
	if c.closed || !c.trackedLocked(f) {
		c.mu.Unlock()
		return
	}
	f.answered = false
	f.attempts++
	n := f.attempts
	c.mu.Unlock()
	c.log.Warn("producer: publishing an unacknowledged event again under the same msg id",
		"subject", f.msg.Subject, "msg_id", f.key.msgID, "attempt", n, "reason", why)
	if _, err := c.js.PublishMsgAsync(f.msg, jetstream.WithStallWait(c.opts.StallWait)); err != nil {
		c.forget(f)
		f.resolve(Committed{}, fmt.Errorf("producer: publish to %s again (attempt %d): %w", f.msg.Subject, n, err))
	}
}

// trackedLocked reports whether f still awaits its outcome (c.mu held).
func (c *Client) trackedLocked(f *Future) bool {
	for _, g := range c.pending[f.key] {
		if g == f {
			return true
		}
	}
	return false
}

// unacked returns the oldest future of m's msg id without a JetStream
// answer yet, marking it answered.
func (c *Client) unacked(m *nats.Msg) *Future {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.lookupLocked(m) {
		if !f.answered {
			f.answered = true
			return f
		}
	}
	return nil
}

func (c *Client) forget(f *Future) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.pending[f.key]
	for i, g := range fs {
		if g == f {
			fs = append(fs[:i], fs[i+1:]...)
			break
		}
	}
	if len(fs) == 0 {
		delete(c.pending, f.key)
	} else {
		c.pending[f.key] = fs
	}
}

// InFlight returns how many published events await their receipt.
func (c *Client) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, fs := range c.pending {
		n += len(fs)
	}
	return n
}

// Close unsubscribes, fails the futures still pending and closes the
// remote store the client created; the NATS connection stays open.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	subs := c.subs
	pending := c.pending
	c.subs, c.pending = map[string]*nats.Subscription{}, map[futureKey][]*Future{}
	c.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	for _, fs := range pending {
		for _, f := range fs {
			f.resolve(Committed{}, errors.New("producer: client closed before the commit receipt arrived"))
		}
	}
	c.rpcMu.Lock()
	defer c.rpcMu.Unlock()
	var errs []error
	for _, st := range c.rpcs {
		errs = append(errs, st.Close())
	}
	c.rpcs, c.rds = map[string]store.Store{}, map[string]*securelog.Reader{}
	return errors.Join(errs...)
}
