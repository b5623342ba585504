package securelog

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// AppendResult is the result of an append (SPEC §3.4).
type AppendResult struct {
	Seqno     uint64   `json:"seqno"`
	EntryHash wire.Hex `json:"entry_hash"`
}

// Event is one event to append.
type Event struct {
	Stream    string
	EventType string
	Severity  wire.Severity
	Producer  string
	Payload   []byte
	// Encoding, when non-nil, is the caller's payload_encoding tag
	// (append-with-encoding); only allowed on public streams.
	Encoding *string
	// Seal asks for a sealed append. Protected and highly-restricted
	// streams are always sealed and public streams never are (DECISIONS 7),
	// so Seal on a public stream is rejected rather than silently ignored.
	Seal bool
}

// BatchResult is the outcome of one event of a batch: either a result or
// the reason the event was rejected (nothing was written for it).
type BatchResult struct {
	AppendResult
	Err error
}

// Append appends an event with payload_encoding "cbor" (SPEC §14.2). On a
// protected or highly-restricted stream the payload is sealed (DECISIONS 7).
// When Append returns nil the entry is durable.
func (l *Log) Append(ctx context.Context, stream, eventType string, sev wire.Severity, producer string, payload []byte) (AppendResult, error) {
	return l.appendOne(ctx, Event{Stream: stream, EventType: eventType, Severity: sev, Producer: producer, Payload: payload})
}

// AppendWithEncoding appends with the caller's payload_encoding tag, verbatim
// (SPEC §14.3).
func (l *Log) AppendWithEncoding(ctx context.Context, stream, eventType string, sev wire.Severity, producer string, payload []byte, encoding string) (AppendResult, error) {
	return l.appendOne(ctx, Event{Stream: stream, EventType: eventType, Severity: sev, Producer: producer, Payload: payload, Encoding: &encoding})
}

// AppendSealed appends with the payload sealed under the entry's segment key
// (SPEC §12.3 with DECISIONS 5: the key is always that of the segment the
// entry ends up in).
func (l *Log) AppendSealed(ctx context.Context, stream, eventType string, sev wire.Severity, producer string, payload []byte) (AppendResult, error) {
	return l.appendOne(ctx, Event{Stream: stream, EventType: eventType, Severity: sev, Producer: producer, Payload: payload, Seal: true})
}

// appendOne appends one event. On stores that commit batches atomically
// (store.Batcher), concurrent single appends are group-committed: the
// first caller commits everything queued meanwhile in one synced write, so
// N producers share one fsync instead of queueing for N. Each caller still
// gets its own result only after the write that holds its entry is
// durable. Over a batchStarter the groups are pipelined (appendQueue,
// pipeline.go); over other Batchers they commit one at a time
// (batch.Group).
func (l *Log) appendOne(ctx context.Context, ev Event) (AppendResult, error) {
	if _, ok := l.st.(batchStarter); ok {
		return l.queue.append(l, ev)
	}
	if _, ok := l.st.(store.Batcher); !ok {
		res, err := l.AppendBatch(ctx, []Event{ev}, nil)
		if err != nil {
			return AppendResult{}, err
		}
		return res[0].AppendResult, res[0].Err
	}
	r, err := l.group.Do(ev)
	if err != nil {
		return AppendResult{}, err
	}
	return r.AppendResult, r.Err
}

// commitGroup is the group commit's commit function. The leader commits on
// behalf of others: their entries must not fail because one caller's
// context is cancelled, so it runs without one.
func (l *Log) commitGroup(evs []Event) ([]BatchResult, error) {
	return l.AppendBatch(context.Background(), evs, nil)
}

func noMeta([]BatchResult) map[string][]byte { return nil }

// maxGroup bounds the events of one group commit.
const maxGroup = 4096

// AppendBatch chains every event and commits all accepted entries together
// with meta in one durable write when the store supports it (store.Batcher),
// else one insert per entry. Events that are invalid (deprecated stream,
// bad severity, missing KEK, ...) are rejected individually in their
// BatchResult and do not stop the others; a storage failure fails the whole
// batch and nothing is reported as written.
func (l *Log) AppendBatch(ctx context.Context, events []Event, meta map[string][]byte) ([]BatchResult, error) {
	return l.AppendBatchFunc(ctx, events, func([]BatchResult) map[string][]byte { return meta })
}

// AppendBatchFunc is AppendBatch with metadata computed from the batch's
// results (seqnos, entry hashes, per-event rejections) before the commit,
// so that records about the entries commit atomically with them. meta
// must not retain the results slice.
//
// Another writer of the same store (another process, or a remote store's
// other clients) may take the seqno this Log chose: when the store refuses
// the first entry as a duplicate seqno and nothing of the batch was
// written, the batch is rebuilt on the store's new head and retried
// (bounded), instead of failing the caller.
func (l *Log) AppendBatchFunc(ctx context.Context, events []Event, meta func([]BatchResult) map[string][]byte) ([]BatchResult, error) {
	res, f, err := l.startBatch(ctx, events, meta)
	if err != nil || f == nil {
		return res, err
	}
	if err := f.result(); err != nil {
		return nil, err
	}
	return res, nil
}

// startBatch is AppendBatchFunc up to the start of the commit: with a
// flight, the batch is durable once the flight's result is nil (pipeline.go);
// without one, it was durable when startBatch returned.
func (l *Log) startBatch(ctx context.Context, events []Event, meta func([]BatchResult) map[string][]byte) ([]BatchResult, *flight, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.settle()
	if err := l.checkOpen(); err != nil {
		return nil, nil, err
	}
	if err := l.anyHalted(); err != nil {
		return nil, nil, err // no batch commits around a halted stream (halt.go)
	}
	for attempt := 1; ; attempt++ {
		res, f, retry, err := l.appendLocked(ctx, events, meta)
		if !retry || attempt >= maxSeqnoRetries || ctx.Err() != nil {
			return res, f, err
		}
		l.log.Debug("seqno taken by another writer; retrying the append on the new head", "attempt", attempt, "error", err)
	}
}

// maxSeqnoRetries bounds how often one append is rebuilt after losing a
// seqno race to other writers of the store.
const maxSeqnoRetries = 100

// appendLocked is one attempt of AppendBatchFunc; retry reports that it
// failed only because another writer took its first seqno (nothing was
// written). Over a batchStarter it returns the started batch's flight
// (with a CommitHook it waits for it: the hook extends its state only
// from durable batches). The caller holds l.mu.
func (l *Log) appendLocked(ctx context.Context, events []Event, meta func([]BatchResult) map[string][]byte) (_ []BatchResult, _ *flight, retry bool, err error) {
	bs, pipelined := l.st.(batchStarter)
	if pipelined {
		l.makeRoom()
	}
	if !l.haveHead {
		h, _, err := l.st.GlobalHead(ctx)
		if err != nil {
			return nil, nil, false, storageErr(err, "global head")
		}
		l.globalHead, l.haveHead = h, true
	}
	b := &batchState{l: l, streams: map[string]*streamState{}}
	results := make([]BatchResult, len(events))
	rows := make([]wire.EntryRow, 0, len(events))
	next := l.globalHead
	for i, ev := range events {
		row, err := b.build(ctx, ev, next+1)
		if err != nil {
			if isStorage(err) || isHalt(err) {
				l.invalidate() // the store may have changed under this batch
				return nil, nil, false, err
			}
			results[i].Err = err
			continue
		}
		next++
		rows = append(rows, row)
		results[i].AppendResult = AppendResult{Seqno: row.Seqno, EntryHash: row.EntryHash}
	}
	m := meta(results)
	h := l.opts.CommitHook
	if h != nil && len(rows) > 0 {
		extra, perr := h.PrepareCommit(ctx, rows)
		if perr != nil {
			l.invalidate()
			return nil, nil, false, storageErr(perr, "prepare commit of seqnos %d..%d", rows[0].Seqno, rows[len(rows)-1].Seqno)
		}
		m = mergeMeta(m, extra)
		defer func() { h.FinishCommit(err) }() // err: this function's result
	}
	var f *flight
	var written int
	if pipelined && (len(rows) > 0 || len(m) > 0) {
		// An error of start means nothing was written (batchStarter).
		if f, err = l.start(ctx, bs, rows, m); err == nil && h != nil {
			err = f.result()
			l.settle()
			f = nil
		}
	} else if written, err = l.commit(ctx, rows, m); err == nil {
		for _, r := range rows {
			l.anchors.put(r.StreamID, tailAnchor{seqno: r.Seqno, hash: r.EntryHash})
		}
	}
	if err != nil {
		l.invalidate()
		var dup *store.DuplicateSeqnoError
		return nil, nil, written == 0 && errors.As(err, &dup), err
	}
	// The caches run ahead of a batch in flight; settle drops them if it fails.
	l.globalHead = next
	for _, r := range rows {
		l.lastHash.put(r.StreamID, r.EntryHash)
	}
	return results, f, false, nil
}

// mergeMeta returns a with b's records added (a new map: a may be the
// caller's).
func mergeMeta(a, b map[string][]byte) map[string][]byte {
	if len(b) == 0 {
		return a
	}
	m := make(map[string][]byte, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// commit writes rows (and meta) and returns how many rows were written
// before a failure (all or none with a store.Batcher).
func (l *Log) commit(ctx context.Context, rows []wire.EntryRow, meta map[string][]byte) (int, error) {
	if bt, ok := l.st.(store.Batcher); ok && (len(rows) > 1 || len(meta) > 0) {
		if err := bt.CommitBatch(ctx, store.Batch{Entries: rows, Meta: meta}); err != nil {
			return 0, storageErr(err, "commit batch of %d entries", len(rows))
		}
		return len(rows), nil
	}
	if len(meta) > 0 {
		return 0, wire.Storagef(nil, "store does not support batch metadata")
	}
	for i, r := range rows {
		got, err := l.st.Insert(ctx, r)
		if err != nil {
			return i, storageErr(err, "insert seqno %d", r.Seqno)
		}
		if got != r.Seqno {
			return i + 1, wire.Storagef(nil, "store assigned seqno %d but we committed %d in the hash", got, r.Seqno)
		}
	}
	return len(rows), nil
}

// invalidate drops the write caches (after a failed write, or when another
// writer may have changed the store).
func (l *Log) invalidate() {
	l.haveHead = false
	l.lastHash.clear()
}

// streamState is what a batch knows about one stream.
type streamState struct {
	row     wire.StreamRow
	tier    string // canonical tier
	sealSeg uint64 // segment id that sealed entries of the open segment use (0 = not computed)
	last    []byte // entry hash of the stream's newest entry in this batch (nil = none yet)
}

type batchState struct {
	l       *Log
	streams map[string]*streamState
	pending *pendingSet // lazily computed
}

func (b *batchState) stream(ctx context.Context, name string) (*streamState, error) {
	if s, ok := b.streams[name]; ok {
		return s, nil
	}
	row, ok, err := b.l.st.StreamGet(ctx, name)
	if err != nil {
		return nil, storageErr(err, "get stream %q", name)
	}
	if !ok {
		// A new stream's name follows the pipeline's rule (issue 9 item 11).
		if err := wire.CheckStreamToken(name); err != nil {
			return nil, err
		}
		// DECISIONS 8: the first append creates the stream as public.
		row = wire.StreamRow{Name: name, Tier: seal.TierPublic, CreatedAt: b.l.timestamp()}
		if err := b.l.st.StreamUpsert(ctx, row); err != nil {
			return nil, storageErr(err, "create stream %q", name)
		}
	}
	s := &streamState{row: row}
	b.streams[name] = s
	return s, nil
}

func (b *batchState) build(ctx context.Context, ev Event, seqno uint64) (wire.EntryRow, error) {
	l := b.l
	if !ev.Severity.Valid() {
		return wire.EntryRow{}, wire.Invalidf("invalid severity ordinal %d", uint8(ev.Severity))
	}
	st, err := b.stream(ctx, ev.Stream)
	if err != nil {
		return wire.EntryRow{}, err
	}
	if st.row.DeprecatedAt != nil {
		return wire.EntryRow{}, wire.Invalidf("stream '%s' is deprecated and no longer accepts new entries (deprecated %s)", ev.Stream, *st.row.DeprecatedAt)
	}
	if st.tier == "" {
		t, err := seal.ParseTier(st.row.Tier)
		if err != nil {
			return wire.EntryRow{}, wire.Invalidf("stream '%s' has invalid tier '%s': %v", ev.Stream, st.row.Tier, err)
		}
		st.tier = t
	}
	sealed := st.tier != seal.TierPublic
	if ev.Seal && !sealed {
		return wire.EntryRow{}, wire.Invalidf("stream '%s' is public (plaintext, DECISIONS 7): create it with tier protected or highly-restricted to seal its payloads", ev.Stream)
	}
	eventType, producer, payload, encoding := ev.EventType, ev.Producer, ev.Payload, wire.EncoderName
	if ev.Encoding != nil {
		if sealed {
			return wire.EntryRow{}, wire.Invalidf("stream '%s' is %s: its payloads are sealed, a custom payload_encoding %q is not allowed", ev.Stream, st.tier, *ev.Encoding)
		}
		encoding = *ev.Encoding
	}
	if sealed {
		if len(l.opts.KEK) == 0 {
			return wire.EntryRow{}, wire.Invalidf("no master KEK configured")
		}
		if err := seal.CheckStreamID(ev.Stream); err != nil {
			return wire.EntryRow{}, wire.Invalidf("%v", err)
		}
		segID, err := b.sealSegment(ctx, st, ev.Stream)
		if err != nil {
			return wire.EntryRow{}, err
		}
		nonce := make([]byte, 12)
		if _, err := rand.Read(nonce); err != nil {
			return wire.EntryRow{}, &wire.EncodingError{Msg: fmt.Sprintf("nonce: %v", err)}
		}
		payload, err = seal.Seal(l.opts.KEK, ev.Stream, st.tier, segID, nonce, ev.Payload)
		if err != nil {
			return wire.EntryRow{}, &wire.EncodingError{Msg: err.Error()}
		}
		encoding = wire.AEADEncoding
		if st.tier == seal.TierHighlyRestricted {
			eventType = seal.Minimize(l.opts.KEK, ev.Stream, "event_type", ev.EventType)
			producer = seal.Minimize(l.opts.KEK, ev.Stream, "producer", ev.Producer)
		}
	}
	prev := st.last
	if prev == nil {
		if prev, err = l.prevHash(ctx, ev.Stream); err != nil {
			return wire.EntryRow{}, err
		}
	}
	row := wire.EntryRow{
		Seqno: seqno, StreamID: ev.Stream, SessionID: l.sessID, BootID: l.bootID,
		Timestamp: l.stamp.format(l.now()), EventType: eventType, Severity: ev.Severity, Producer: producer,
		PayloadEncoding: encoding, Payload: payload, PrevEntryHash: prev,
	}
	if row.Payload == nil {
		row.Payload = []byte{}
	}
	row.EntryHash = chain.RowHash(row)
	st.last = row.EntryHash // provisional: the Log's cache learns it after the commit
	return row, nil
}

// prevHash returns the entry hash of the stream's newest committed entry,
// or ZeroHash.
func (l *Log) prevHash(ctx context.Context, stream string) ([]byte, error) {
	if h, ok := l.lastHash.get(stream); ok {
		return h, nil
	}
	last, ok, err := l.st.Last(ctx, stream)
	if err != nil {
		return nil, storageErr(err, "last entry of stream %q", stream)
	}
	if !ok {
		l.lastHash.put(stream, wire.ZeroHash)
		return wire.ZeroHash, nil
	}
	if err := check32(last.EntryHash, fmt.Sprintf("entry_hash of seqno %d", last.Seqno)); err != nil {
		return nil, err
	}
	if err := l.verifyTail(ctx, stream, last); err != nil {
		return nil, err
	}
	l.lastHash.put(stream, last.EntryHash)
	return last.EntryHash, nil
}

func (b *batchState) sealSegment(ctx context.Context, st *streamState, name string) (uint64, error) {
	if st.sealSeg != 0 {
		return st.sealSeg, nil
	}
	if r, ok := b.l.st.(store.SegmentReserver); ok {
		// The store keeps the id: no other stream's close can take it.
		id, err := r.SegmentReserve(ctx, name)
		if err != nil {
			return 0, storageErr(err, "reserve the segment id of stream %q", name)
		}
		st.sealSeg = id
		return id, nil
	}
	if b.pending == nil {
		p, err := b.l.pendingSealed(ctx)
		if err != nil {
			return 0, err
		}
		b.pending = p
	}
	id, err := b.l.reservedSegmentID(ctx, b.pending, name, true)
	if err != nil {
		return 0, err
	}
	st.sealSeg = id
	return id, nil
}

func isStorage(err error) bool {
	_, ok := err.(*wire.StorageError)
	return ok
}
