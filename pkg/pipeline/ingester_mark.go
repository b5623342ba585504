package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/securelog"
)

// The ingester's mark: outside its store, in the JetStream key-value bucket
// MarkBucket, each ingester records how far it has committed — the last
// applied stream sequence and the store's newest seqno — after every
// committed batch. The store's own position rolls back with the store;
// the mark does not. A store restored from an older copy is behind the
// mark on the next start, and the ingester refuses it (issue 9 item 9)
// instead of re-applying the newer events under re-used seqnos and
// segment ids.
//
// The mark is written after the batch is durable in the store and without
// waiting for JetStream's acknowledgement, so it is never ahead of the
// store; a lost write only makes the check weaker, never a false alarm.
// The batches of one DefaultAnnounceInterval share one write (notices), so
// the mark may trail the store by that much: a copy restored from less
// than that ago is not told apart (a backup is never that fresh).

// MarkBucket is the JetStream key-value bucket of the ingesters' marks;
// the key is "<JetStream stream>.<durable>".
const MarkBucket = "SECURELOG_INGESTER"

// MarkSubjects is what an ingester publishes its marks on (its NATS user
// needs publish permission there).
const MarkSubjects = "$KV." + MarkBucket + ".>"

// ingestMark is the value of an ingester's mark (JSON).
type ingestMark struct {
	// Position is the last applied stream sequence of Created's stream.
	Position uint64 `json:"position"`
	// Created is the creation time of the JetStream stream.
	Created string `json:"created"`
	// Seqno is the store's newest seqno.
	Seqno uint64 `json:"seqno"`
}

// StoreBehindError: the ingester's store holds less than the ingester
// committed to it — it was replaced by an older copy (or lost writes).
type StoreBehindError struct {
	// Bucket and Key locate the mark.
	Bucket, Key string
	// Mark is what the ingester committed; Store is what the store holds.
	MarkPosition, StorePosition uint64
	MarkSeqno, StoreSeqno       uint64
}

func (e *StoreBehindError) Error() string {
	return fmt.Sprintf("the store is behind what this ingester committed to it: it applied JetStream sequences up to %d and seqnos up to %d, "+
		"the store holds position %d and seqnos up to %d — it was restored from an older copy (a rollback); re-applying the newer events "+
		"would re-use seqnos and segment ids and fork the signed history. Put the newest store back and restart; to accept this store "+
		"as it is, delete key %q of the JetStream key-value bucket %s (nats kv del %s %s) and restart",
		e.MarkPosition, e.MarkSeqno, e.StorePosition, e.StoreSeqno, e.Key, e.Bucket, e.Bucket, e.Key)
}

// marker writes an ingester's mark.
type marker struct {
	kv      jetstream.KeyValue
	subject string
	key     string
	mu      sync.Mutex // keeps the writes in order
	last    ingestMark
}

// markKey is the mark's key of an ingester: "<stream>.<durable>", with
// characters a key may not hold replaced by '_'.
func markKey(stream, durable string) string {
	clean := func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}
	return strings.Map(clean, stream) + "." + strings.Map(clean, durable)
}

// openMarks creates or opens MarkBucket (retried while JetStream is not
// ready, like the streams).
func (in *Ingester) openMarks(ctx context.Context) error {
	replicas := max(in.cfg.Streams.Replicas, 1)
	var kv jetstream.KeyValue
	err := in.wait(ctx, "open JetStream key-value bucket "+MarkBucket, func(ctx context.Context) (err error) {
		kv, err = in.js.KeyValue(ctx, MarkBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = in.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: MarkBucket, History: 1, Storage: jetstream.FileStorage,
				Replicas: replicas, Description: "securelog ingesters: how far each committed (anti-rollback)"})
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = in.js.KeyValue(ctx, MarkBucket)
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("key-value bucket %s: %w", MarkBucket, err)
	}
	key := markKey(in.cfg.Stream, in.cfg.Durable)
	in.marks = &marker{kv: kv, key: key, subject: "$KV." + MarkBucket + "." + key}
	return nil
}

// checkMark compares the store with the ingester's mark: a store behind
// it is *StoreBehindError. It records the store's newest seqno for the
// marks written from now on.
func (in *Ingester) checkMark(ctx context.Context) error {
	var pos uint64
	raw, ok, err := in.bt.GetMeta(ctx, PositionKey(in.cfg.Stream))
	if err != nil {
		return fmt.Errorf("read consumer position: %w", err)
	}
	if ok && len(raw) == 8 {
		pos = binary.BigEndian.Uint64(raw)
	}
	seqno, _, err := in.cfg.Log.Store().GlobalHead(ctx)
	if err != nil {
		return fmt.Errorf("store head: %w", err)
	}
	in.seqno.Store(seqno)
	var s jetstream.Stream
	if err := in.wait(ctx, "read JetStream stream "+in.cfg.Stream, func(ctx context.Context) (err error) {
		s, err = in.js.Stream(ctx, in.cfg.Stream)
		return err
	}); err != nil {
		return fmt.Errorf("stream %s: %w", in.cfg.Stream, err)
	}
	created := s.CachedInfo().Created.UTC().Format(time.RFC3339Nano)
	in.created = created
	var e jetstream.KeyValueEntry
	err = in.wait(ctx, "read the ingester's mark in "+MarkBucket, func(ctx context.Context) (err error) {
		e, err = in.marks.kv.Get(ctx, in.marks.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err == nil && e == nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the ingester's mark %s/%s: %w", MarkBucket, in.marks.key, err)
	}
	var m ingestMark
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return fmt.Errorf("the ingester's mark %s/%s: %w", MarkBucket, in.marks.key, err)
	}
	// Positions compare only within one JetStream stream; seqnos always.
	if (m.Created == created && m.Position > pos) || m.Seqno > seqno {
		return &StoreBehindError{Bucket: MarkBucket, Key: in.marks.key, MarkPosition: m.Position, StorePosition: pos,
			MarkSeqno: m.Seqno, StoreSeqno: seqno}
	}
	return nil
}

// noteCommitted records the newest seqno of a committed batch; the mark
// that holds it is written by in.notes (writeMark).
func (in *Ingester) noteCommitted(res []securelog.BatchResult) {
	for _, r := range res {
		if r.Err == nil {
			for {
				old := in.seqno.Load()
				if r.Seqno <= old || in.seqno.CompareAndSwap(old, r.Seqno) {
					break
				}
			}
		}
	}
}

// writeMark writes the mark of what is committed now (core NATS publish to
// the bucket's subject: no wait). It runs after the commits it names.
func (in *Ingester) writeMark() {
	mk := in.marks
	if mk == nil {
		return
	}
	mk.mu.Lock()
	defer mk.mu.Unlock()
	m := ingestMark{Position: in.pos.Load(), Created: in.created, Seqno: in.seqno.Load()}
	if m.Created == "" || m == mk.last {
		return // not positioned yet, or nothing new
	}
	b, _ := json.Marshal(m)
	if err := in.cfg.Conn.Publish(mk.subject, b); err != nil {
		in.log.Warn("write the ingester's mark", "subject", mk.subject, "err", err)
		return
	}
	mk.last = m
}

// refuse stops the ingester over a store behind its mark: every stream of
// the store (and, for streams the store lost entirely, the pseudo-stream
// "_ingester") is halted with securelog.HaltRollback, which refuses
// appends and closes, raises their alerts and makes the ingester not
// ready.
func (in *Ingester) refuse(ctx context.Context, behind *StoreBehindError) {
	in.log.Error("ingester stopped: the store was rolled back; nothing is ingested until an operator acts", "err", behind)
	_ = in.cfg.Log.Halt(ingesterPseudoStream, securelog.HaltRollback, behind)
	streams, err := in.cfg.Log.Store().StreamList(ctx)
	if err != nil {
		in.log.Warn("list the store's streams to halt them", "err", err)
	}
	for _, s := range streams {
		_ = in.cfg.Log.Halt(s.Name, securelog.HaltRollback, behind)
	}
}

// ingesterPseudoStream names the ingester itself in alerts that concern
// no single stream.
const ingesterPseudoStream = "_ingester"
