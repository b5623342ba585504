package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/batch"
	"github.com/securelog/securelog/pkg/jswait"
	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// IngesterConfig configures an Ingester. Zero fields take the defaults of
// defaults.go.
type IngesterConfig struct {
	// Log is the opened log over the local store; the ingester is its only
	// writer. Its store must implement store.Batcher (pebble, sqlite, memory).
	Log *securelog.Log
	// Conn is the NATS connection (JetStream enabled on the server).
	Conn *nats.Conn
	// Stream is the JetStream stream of incoming events (wire.InStream).
	Stream string
	// Durable is the durable consumer name (DefaultDurable). One ingester
	// per durable: it is re-created at the store's position on every start.
	Durable string
	// Partition is the partition this ingester serves (zero: the default
	// partition): its JetStream stream, subjects and queue groups.
	Partition wire.Partition
	// FilterSubject narrows the consumer to part of the partition's
	// subjects (default: all of them, Partition.InSubjects()).
	FilterSubject string
	// Streams configures the partition's SECURELOG_IN stream, SECURELOG_DLQ
	// and the announcement streams if they are created (its Partition is
	// set to Partition). Its Wait also governs every other JetStream
	// request of the ingester's start (key-value buckets, the partition
	// map, the consumer): each is bounded and retried while the cluster
	// does not answer, logged, and reported by Waiting.
	Streams StreamConfig
	// Map is the partition map the ingester claims each new stream in (nil:
	// the SECURELOG_PARTITIONS bucket, created if missing). An event of a
	// stream that belongs to another partition is dead-lettered.
	Map *partition.Map
	// MaxBatch, BatchWait, MaxPayload: see the Default* constants.
	MaxBatch   int
	BatchWait  time.Duration
	MaxPayload int
	// AckWait is ignored: the consumer acknowledges nothing (the position
	// committed with the entries is the progress record). Kept so that
	// configurations naming it still load (the CLI warns).
	//
	// Deprecated: it has no effect.
	AckWait time.Duration
	// AnnounceInterval is how often, at most, the ingester writes its
	// appended announcements and its mark to JetStream
	// (DefaultAnnounceInterval); the batches committed meanwhile share them.
	AnnounceInterval time.Duration
	// NoRequestHandlers disables the securelog.append.> and
	// securelog.close.> request handlers.
	NoRequestHandlers bool
	Logger            *slog.Logger
	Metrics           *Metrics
}

// Ingester consumes SECURELOG_IN and chains every event into the store. It
// records the last applied JetStream stream sequence in the same atomic,
// fsynced batch as the entries, and positions its consumer from that record
// on every (re)start, so redelivered or replayed messages are skipped:
// no loss, no duplicate. It also serves request/reply appends and segment
// closes, which must run in this same Log (sealed appends and closes are
// serialised by one instance).
type Ingester struct {
	cfg     IngesterConfig
	bt      store.Batcher
	index   *commitIndex // JetStream sequence → seqno, committed with the entries
	js      jetstream.JetStream
	log     *slog.Logger
	m       *Metrics
	pos     atomic.Uint64                                  // last applied stream sequence
	seqno   atomic.Uint64                                  // the store's newest seqno (for the mark)
	marks   *marker                                        // the mark outside the store (ingester_mark.go)
	created string                                         // creation time of the JetStream stream
	reqs    *batch.Group[appendReq, securelog.BatchResult] // request/reply appends
	ready   atomic.Bool
	started chan struct{} // closed when the consumer first runs
	once    sync.Once
	post    chan func() // receipts and acks of committed batches, in order
	notes   *notices    // announcements and marks, shared by the batches of an interval
}

// NewIngester checks cfg and returns an ingester.
func NewIngester(cfg IngesterConfig) (*Ingester, error) {
	if cfg.Log == nil || cfg.Conn == nil {
		return nil, errors.New("ingester: Log and Conn are required")
	}
	bt, ok := cfg.Log.Store().(store.Batcher)
	if !ok {
		return nil, fmt.Errorf("ingester: store %T cannot commit entries with the consumer position atomically (needs store.Batcher: pebble, sqlite or memory)", cfg.Log.Store())
	}
	// The default partition's names mean "the default" in any partition,
	// so one configuration file serves every partition (--partition).
	if cfg.Stream == "" || cfg.Stream == wire.InStream {
		cfg.Stream = cfg.Partition.InStream()
	}
	if cfg.Durable == "" || cfg.Durable == DefaultDurable {
		cfg.Durable = cfg.Partition.Durable(DefaultDurable)
	}
	if cfg.FilterSubject == "" || cfg.FilterSubject == wire.InSubjects {
		cfg.FilterSubject = cfg.Partition.InSubjects()
	}
	cfg.Streams.Partition = cfg.Partition
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = DefaultBatchWait
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.AnnounceInterval <= 0 {
		cfg.AnnounceInterval = DefaultAnnounceInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	log := cfg.Logger.With("worker", "ingester", "partition", cfg.Partition.Name())
	if cfg.Streams.Wait.Logger == nil {
		cfg.Streams.Wait.Logger = log
	}
	if cfg.Streams.Wait.Status == nil {
		cfg.Streams.Wait.Status = &jswait.Status{}
	}
	js, err := jetstream.New(cfg.Conn, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
		log.Warn("JetStream publish not stored", "subject", m.Subject, "err", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("ingester: %w", err)
	}
	in := &Ingester{cfg: cfg, bt: bt, js: js, log: log, m: cfg.Metrics,
		started: make(chan struct{}), index: newCommitIndex(bt, cfg.Stream)}
	in.notes = newNotices(cfg.AnnounceInterval, in.announceAppended, in.writeMark)
	return in, nil
}

// Position returns the last JetStream stream sequence applied to the store.
func (in *Ingester) Position() uint64 { return in.pos.Load() }

// Ready reports whether the consumer is positioned and consuming, and its
// log has not halted a stream after a failed integrity check.
func (in *Ingester) Ready() bool { return in.ready.Load() && in.cfg.Log.Healthy() == nil }

// Waiting is nil unless the ingester waits for JetStream (a stream,
// bucket or consumer it cannot create or read yet: no meta leader, no
// answer, no suitable peers); the error says what it waits for and why.
func (in *Ingester) Waiting() error { return in.cfg.Streams.Wait.Status.Err() }

// wait runs fn as one JetStream request of the ingester, bounded and
// retried while the cluster does not answer (jswait.Do).
func (in *Ingester) wait(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	return jswait.Do(ctx, in.cfg.Streams.Wait, what, fn)
}

// Started is closed the first time the consumer is positioned and
// consuming: from then on, published events are taken. It is also closed
// when the ingester refuses a store that is behind its mark
// (StoreBehindError; Ready stays false).
func (in *Ingester) Started() <-chan struct{} { return in.started }

// Run consumes until ctx ends, then stops gracefully (the batch being
// committed finishes) and returns nil. A failed batch is not acknowledged:
// the ingester re-reads its position from the store and re-creates its
// consumer there, so nothing is skipped.
func (in *Ingester) Run(ctx context.Context) error {
	if err := EnsureStreams(ctx, in.js, in.cfg.Streams); err != nil {
		return fmt.Errorf("ingester: %w", err)
	}
	if err := in.openMarks(ctx); err != nil {
		return fmt.Errorf("ingester: %w", err)
	}
	if err := in.checkMark(ctx); err != nil {
		var behind *StoreBehindError
		if !errors.As(err, &behind) {
			return fmt.Errorf("ingester: %w", err)
		}
		in.refuse(ctx, behind)
		in.once.Do(func() { close(in.started) })
		<-ctx.Done()
		return nil
	}
	if in.cfg.Map == nil {
		m, err := partition.Open(ctx, in.js, partition.OpenConfig{Create: true, Replicas: in.cfg.Streams.Replicas, Wait: in.cfg.Streams.Wait})
		if err != nil {
			return fmt.Errorf("ingester: %w", err)
		}
		in.cfg.Map = m
	}
	if err := in.claimStored(ctx); err != nil {
		return fmt.Errorf("ingester: %w", err)
	}
	var stopHandlers func()
	if !in.cfg.NoRequestHandlers {
		var err error
		if stopHandlers, err = in.startHandlers(ctx); err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		err := in.consume(ctx)
		in.ready.Store(false)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errConsumerGap) {
			in.log.Warn("ingester consumer dropped messages; re-positioning from the store", "err", err)
		} else {
			in.log.Error("ingester batch loop failed; re-positioning from the store", "err", err)
		}
		sleepCtx(ctx, DefaultRetryBackoff)
	}
	if stopHandlers != nil {
		stopHandlers()
	}
	in.notes.flush() // what the last batches committed
	_ = in.cfg.Conn.FlushTimeout(2 * time.Second)
	in.log.Info("ingester stopped", "position", in.pos.Load())
	return nil
}

// position reads the applied sequence from the store and reconciles it
// with the JetStream stream's state.
func (in *Ingester) position(ctx context.Context) (uint64, error) {
	var pos uint64
	raw, ok, err := in.bt.GetMeta(ctx, PositionKey(in.cfg.Stream))
	if err != nil {
		return 0, fmt.Errorf("read consumer position: %w", err)
	}
	if ok {
		if len(raw) != 8 {
			return 0, fmt.Errorf("consumer position %q is %d bytes, want 8", PositionKey(in.cfg.Stream), len(raw))
		}
		pos = binary.BigEndian.Uint64(raw)
	}
	var s jetstream.Stream
	if err := in.wait(ctx, "read JetStream stream "+in.cfg.Stream, func(ctx context.Context) (err error) {
		s, err = in.js.Stream(ctx, in.cfg.Stream)
		return err
	}); err != nil {
		return 0, fmt.Errorf("stream %s: %w", in.cfg.Stream, err)
	}
	info := s.CachedInfo()
	in.created = info.Created.UTC().Format(time.RFC3339Nano)
	rawCreated, hasCreated, err := in.bt.GetMeta(ctx, CreatedKey(in.cfg.Stream))
	if err != nil {
		return 0, fmt.Errorf("read consumer position: %w", err)
	}
	if pos > 0 && hasCreated && string(rawCreated) != in.created {
		in.log.Warn("JetStream stream was re-created since the last applied batch; consuming it from the start",
			"stream", in.cfg.Stream, "recorded_created", string(rawCreated), "created", in.created, "old_position", pos)
		pos = 0
	}
	if last := info.State.LastSeq; pos > last {
		in.log.Warn("JetStream stream is behind the store's position (broker lost acknowledged messages?); new messages reuse those sequences",
			"stream", in.cfg.Stream, "position", pos, "last_seq", last)
		pos = last
	}
	if first := info.State.FirstSeq; info.State.Msgs > 0 && pos+1 < first {
		Alerter{Conn: in.cfg.Conn, Logger: in.log, Metrics: in.m, Source: "ingester"}.Alert("_ingester", "events-expired", 0,
			fmt.Sprintf("JetStream sequences %d..%d expired before they were ingested", pos+1, first-1))
	}
	in.pos.Store(pos)
	return pos, nil
}

// consume positions the consumer and applies batches until an error.
func (in *Ingester) consume(ctx context.Context) error {
	pos, err := in.position(ctx)
	if err != nil {
		return err
	}
	if err := in.wait(ctx, fmt.Sprintf("delete JetStream consumer %s on %s", in.cfg.Durable, in.cfg.Stream), func(ctx context.Context) error {
		if err := in.js.DeleteConsumer(ctx, in.cfg.Stream, in.cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		return nil
	}); err != nil {
		return fmt.Errorf("delete consumer %s: %w", in.cfg.Durable, err)
	}
	// The consumer acknowledges nothing: the position committed with the
	// entries is the only progress record, and every start re-creates the
	// consumer right after it. SECURELOG_IN keeps messages by its limits,
	// not by acknowledgements, so nothing is lost before it is committed.
	cc := jetstream.ConsumerConfig{
		Durable: in.cfg.Durable, AckPolicy: jetstream.AckNonePolicy,
		FilterSubject: in.cfg.FilterSubject, DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if pos > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos+1
	}
	var cons jetstream.Consumer
	if err := in.wait(ctx, fmt.Sprintf("create JetStream consumer %s on %s", in.cfg.Durable, in.cfg.Stream), func(ctx context.Context) (err error) {
		cons, err = in.js.CreateConsumer(ctx, in.cfg.Stream, cc)
		return err
	}); err != nil {
		return fmt.Errorf("create consumer %s at sequence %d: %w", in.cfg.Durable, pos+1, err)
	}
	// A missing heartbeat is not an error here: while the broker persists
	// a burst it sends neither messages nor heartbeats (see catchUp), and
	// re-creating the consumer would only queue more behind the burst.
	it, err := cons.Messages(jetstream.PullMaxMessages(2*in.cfg.MaxBatch), jetstream.WithMessagesErrOnMissingHeartbeat(false))
	if err != nil {
		return fmt.Errorf("consume %s: %w", in.cfg.Durable, err)
	}
	// Receipts go out on their own goroutine, in batch order, while the
	// next batch is being collected and committed.
	post := make(chan func(), 8)
	in.post = post
	postDone := make(chan struct{})
	go func() {
		defer close(postDone)
		for f := range post {
			f()
		}
	}()
	defer func() { close(post); <-postDone }()
	// The feeder keeps taking and parsing messages while a batch commits;
	// commits stay sequential, in stream order (feed: batch.Group). The
	// catch-up reader takes over while the consumer is starved.
	base := context.WithoutCancel(ctx)
	f := newFeed(pos, in.cfg.MaxBatch, in.cfg.BatchWait, func(batch []inItem) error { return in.apply(base, batch) })
	fctx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		in.feed(fctx, it, f)
	}()
	go func() {
		defer wg.Done()
		in.catchUp(fctx, f)
	}()
	defer func() { stopFeed(); it.Stop(); wg.Wait(); f.stop() }() // before post closes: commits post receipts
	in.log.Info("ingester consuming", "stream", in.cfg.Stream, "durable", in.cfg.Durable, "filter", in.cfg.FilterSubject, "from_seq", pos+1)
	in.ready.Store(true)
	in.once.Do(func() { close(in.started) })
	select {
	case <-f.failed:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("next message: %w", ctx.Err())
	}
}

// inItem is one message of a batch.
type inItem struct {
	subject string
	data    []byte
	seq     uint64
	stream  string // "" if the subject is not securelog.in.<token>
	msgID   string
	event   securelog.Event // the parsed event when err == nil
	ev      int             // index into the batch's events, -1 if rejected before append
	err     error
	stored  int64 // when JetStream stored it (Unix ns, 0 if unknown)
	taken   int64 // when the ingester took it (Unix ns)
}

// parse reads a message's subject and event. An invalid event is reported
// in the item (it is dead-lettered).
func (in *Ingester) parse(seq uint64, subject, msgID string, data []byte) inItem {
	it := inItem{subject: subject, data: data, seq: seq, msgID: msgID, ev: -1}
	stream, ok := in.cfg.Partition.StreamOf(wire.KindIn, subject)
	if !ok {
		it.err = wire.Invalidf("subject %q is not %s<stream> with a one-token stream name", subject, in.cfg.Partition.Kind(wire.KindIn))
		return it
	}
	it.stream = stream
	ev, err := parseEvent(data, in.cfg.MaxPayload)
	if err != nil {
		it.err = err
		return it
	}
	it.event = securelog.Event{Stream: stream, EventType: ev.Type, Severity: ev.Severity,
		Producer: ev.Producer, Payload: ev.Payload, Encoding: ev.Encoding}
	return it
}

// apply commits one batch: one AppendBatch with the position, dead
// letters, then (asynchronously) the receipts.
// Messages at or below the applied position are redeliveries: skipped.
func (in *Ingester) apply(ctx context.Context, batch []inItem) error {
	if len(batch) > 0 {
		in.observeWait(batch[0])
	}
	pos := in.pos.Load()
	maxSeq := pos
	items := batch[:0] // filtered in place: writes never pass reads
	events := make([]securelog.Event, 0, len(batch))
	for _, it := range batch {
		if it.seq <= maxSeq {
			in.m.Duplicates.Inc()
			continue
		}
		maxSeq = it.seq
		if it.err == nil {
			// A stream belongs to one partition: the first event claims
			// it, and another partition's stream is dead-lettered.
			if err := in.claim(ctx, it.stream); err != nil {
				var conflict *wire.PartitionConflictError
				if !errors.As(err, &conflict) {
					return err
				}
				it.err = err
			}
		}
		if it.err == nil {
			it.ev = len(events)
			events = append(events, it.event)
		}
		items = append(items, it)
	}
	in.m.Received.Add(float64(len(items)))
	if maxSeq == pos {
		return nil
	}
	var seqb [8]byte
	binary.BigEndian.PutUint64(seqb[:], maxSeq)
	meta := map[string][]byte{PositionKey(in.cfg.Stream): seqb[:], CreatedKey(in.cfg.Stream): []byte(in.created)}
	if err := in.index.preload(ctx, items); err != nil {
		return err
	}
	start := time.Now()
	res, err := in.cfg.Log.AppendBatchFunc(ctx, events, func(r []securelog.BatchResult) map[string][]byte {
		in.index.prepare(items, r, meta) // the commit index commits with the entries
		return meta
	})
	if err != nil {
		in.index.discard()
		return fmt.Errorf("commit batch of %d events (stream sequences %d..%d): %w", len(events), pos+1, maxSeq, err)
	}
	in.index.install()
	in.pos.Store(maxSeq)
	in.noteCommitted(res)
	in.m.CommitTime.Observe(time.Since(start).Seconds())
	in.m.BatchSize.Observe(float64(len(events)))
	committed := 0
	for i := range items {
		if it := &items[i]; it.ev >= 0 {
			if it.err = res[it.ev].Err; it.err == nil {
				committed++
			}
		}
	}
	in.m.Committed.Add(float64(committed))
	in.deadLetter(ctx, items)
	end := time.Now()
	in.post <- func() {
		in.publishResults(items, res)
		in.m.ReceiptDelay.Observe(time.Since(end).Seconds())
	}
	return nil
}

// observeWait records how long the first message of a batch waited before
// its commit began: from JetStream storing it to the ingester taking it,
// and from then to now.
func (in *Ingester) observeWait(first inItem) {
	now := time.Now().UnixNano()
	if first.stored > 0 && first.taken >= first.stored {
		in.m.DeliveryLag.Observe(float64(first.taken-first.stored) / 1e9)
	}
	if first.taken > 0 && now >= first.taken {
		in.m.BatchWait.Observe(float64(now-first.taken) / 1e9)
	}
}

// deadLetter publishes every rejected message to securelog.dlq.<stream>
// (JetStream, de-duplicated by stream sequence) and waits, bounded, for
// the acknowledgements; failures are logged, never block the pipeline.
func (in *Ingester) deadLetter(ctx context.Context, items []inItem) {
	var futs []jetstream.PubAckFuture
	for _, it := range items {
		if it.err == nil {
			continue
		}
		code := wire.ErrorCode(it.err)
		in.m.Rejected.WithLabelValues(code).Inc()
		rest := strings.TrimPrefix(it.subject, in.cfg.Partition.Kind(wire.KindIn))
		if rest == "" || strings.HasSuffix(rest, ".") {
			rest = "_invalid"
		}
		in.log.Warn("event rejected to the dead-letter subject", "subject", it.subject, "js_seq", it.seq, "msg_id", it.msgID, "err", it.err)
		b := mustJSON(wire.DLQMsg{Stream: it.stream, MsgID: it.msgID, JSSeq: it.seq, Reason: it.err.Error(), Data: it.data})
		m := nats.NewMsg(wire.KindDLQ + rest)
		m.Data = b
		m.Header.Set(wire.MsgIDHeader, fmt.Sprintf("dlq-%s-%d", in.cfg.Stream, it.seq))
		f, err := in.js.PublishMsgAsync(m)
		if err != nil {
			in.log.Error("dead-letter publish failed", "subject", m.Subject, "err", err)
			continue
		}
		futs = append(futs, f)
	}
	if len(futs) == 0 {
		return
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			in.log.Error("dead-letter publish failed", "subject", f.Msg().Subject, "err", err)
		case <-timeout.C:
			in.log.Error("dead-letter publish not acknowledged in time", "pending", len(futs))
			return
		case <-ctx.Done():
			return
		}
	}
}

// publishResults sends one commit receipt per stream of the batch and
// hands its appended announcements and the moved mark to in.notes.
func (in *Ingester) publishResults(items []inItem, res []securelog.BatchResult) {
	receipts := map[string]*wire.CommitReceipt{}
	appended := map[string]*wire.AppendedMsg{}
	var order []string
	for _, it := range items {
		if it.stream == "" {
			continue
		}
		r := receipts[it.stream]
		if r == nil {
			r = &wire.CommitReceipt{Stream: it.stream}
			receipts[it.stream] = r
			order = append(order, it.stream)
		}
		ci := wire.CommitItem{MsgID: it.msgID, JSSeq: it.seq}
		if it.err != nil {
			ci.Error = it.err.Error()
		} else {
			ar := res[it.ev].AppendResult
			ci.Seqno, ci.EntryHash = ar.Seqno, ar.EntryHash
			noteAppended(appended, it.stream, ar)
		}
		r.Items = append(r.Items, ci)
	}
	for _, s := range order {
		subject := wire.SubjectFor(wire.KindCommitted, s)
		if err := in.cfg.Conn.Publish(subject, marshalReceipt(receipts[s])); err != nil {
			in.log.Warn("publish", "subject", subject, "err", err)
		}
	}
	in.notes.add(appended, order)
}

// announceAppended publishes a on securelog.appended.<stream> (JetStream
// stream SECURELOG_APPENDED, where the sealer's durable consumer finds it
// even if the sealer is down now), after the batches it covers committed
// (in.notes calls it).
func (in *Ingester) announceAppended(a *wire.AppendedMsg) {
	announce(in.js, in.log, in.cfg.Partition.Subject(wire.KindAppended, a.Stream), fmt.Sprintf("appended-%s-%d", a.Stream, a.LastSeqno), a)
}

func noteAppended(m map[string]*wire.AppendedMsg, stream string, ar securelog.AppendResult) {
	a := m[stream]
	if a == nil {
		a = &wire.AppendedMsg{Stream: stream, FirstSeqno: ar.Seqno}
		m[stream] = a
	}
	a.Count++
	a.LastSeqno, a.LastEntryHash = ar.Seqno, ar.EntryHash
}

// claim makes stream this ingester's partition's for good (the first
// event of an unassigned stream), or returns the
// *wire.PartitionConflictError of a stream another partition owns.
func (in *Ingester) claim(ctx context.Context, stream string) error {
	return in.cfg.Map.Claim(ctx, stream, in.cfg.Partition.Name())
}

// claimStored claims every stream with entries in the store (a store from
// before the partition map): a stream with entries is never reassigned.
// A stored stream that the map gives to another partition is alerted.
func (in *Ingester) claimStored(ctx context.Context) error {
	rows, err := in.cfg.Log.Store().StreamList(ctx)
	if err != nil {
		return fmt.Errorf("list the store's streams: %w", err)
	}
	for _, r := range rows {
		if wire.CheckStreamToken(r.Name) != nil {
			continue
		}
		// Only streams with entries: stores seed an empty "default" row.
		if _, ok, err := in.cfg.Log.Store().Head(ctx, r.Name); err != nil {
			return fmt.Errorf("head of stream %q: %w", r.Name, err)
		} else if !ok {
			continue
		}
		if err := in.wait(ctx, fmt.Sprintf("claim stream %q in the partition map", r.Name), func(ctx context.Context) error {
			err := in.claim(ctx, r.Name)
			var conflict *wire.PartitionConflictError
			if errors.As(err, &conflict) {
				return jswait.Permanent(err)
			}
			return err
		}); err != nil {
			var conflict *wire.PartitionConflictError
			if !errors.As(err, &conflict) {
				return err
			}
			Alerter{Conn: in.cfg.Conn, Logger: in.log, Metrics: in.m, Source: "ingester"}.Alert(r.Name, "wrong-partition", 0,
				fmt.Sprintf("stream %q is in partition %s's store but the partition map gives it to %s: its new events are dead-lettered",
					r.Name, in.cfg.Partition.Name(), conflict.Owner))
		}
	}
	return nil
}
