// Package securelog is the log API of SPEC §14, in two types:
//
//   - Reader, the read side over a narrow store.ReadStore: read, head,
//     chain verification, segments, inclusion proofs, checkpoint
//     recomputation and signature verification, witness submissions,
//     opening sealed payloads. It starts nothing and writes nothing.
//   - Log, the writer over a store.Store, which embeds a Reader of its
//     store: append (group-committed, pkg/batch), segment close, stream
//     management, checkpoint signing, payload sealing, the head file and
//     integrity halts.
//
// One Log instance is the single writer of its store (DECISIONS 19): appends
// are serialised, so seqnos are never lost or duplicated under concurrency.
// Sealed appends and segment closes must go through the same instance
// (see reserve.go). Every cache is bounded (cache.go).
package securelog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/securelog/securelog/pkg/batch"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Verifier checks a checkpoint signature by signer identity using public keys
// only (a trust file: *checkpoint.Trust implements it).
type Verifier interface {
	Verify(identity string, msg, sig []byte) error
}

// Options configures a Log. The zero value is usable: no signer, no trust,
// no KEK, no head file, real clock, random session id, host boot id.
type Options struct {
	// Signer resolves signing keys for SignSegment.
	Signer keystore.Signer
	// Trust verifies checkpoint signatures. Verification never needs a
	// private key.
	Trust Verifier
	// KEK is the 32-byte master key for payload sealing (SPEC §12).
	KEK []byte
	// HeadFile is the anti-rollback head file path ("" = none). When it
	// does not exist but the store has signed segments, those streams halt
	// (HaltMissingHead) unless WitnessHead or AcceptMissingHead
	// re-establishes it (headanchor.go).
	HeadFile string
	// WitnessHead, if set, returns a witness's head of a stream; a missing
	// head file is then re-established after checking that the store holds
	// every witnessed checkpoint.
	WitnessHead func(ctx context.Context, stream string) (WitnessHead, bool, error)
	// AcceptMissingHead re-establishes a missing head file from the store's
	// newest signed checkpoints, with a warning (the operator's decision
	// that this store is not an older copy).
	AcceptMissingHead bool
	// HeadFileAdvancedElsewhere says that another process (a split
	// deployment's signer) signs this store's segments and keeps the
	// anti-rollback head: the head file is checked when it exists, and a
	// missing one does not halt this Log's streams (nothing here would
	// advance it).
	HeadFileAdvancedElsewhere bool
	// SessionID and BootID override the instance identifiers (tests).
	SessionID, BootID string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives warnings and alerts (default slog.Default()).
	Logger *slog.Logger
	// OnAlert is called when a rollback or divergence is detected.
	OnAlert func(stream string, err error)
	// CacheStreams, CacheCheckpoints and CacheKeys bound the Log's caches
	// (≤ 0: DefaultCacheStreams, DefaultCacheCheckpoints,
	// DefaultCacheKeys; see cache.go for what an eviction costs).
	CacheStreams, CacheCheckpoints, CacheKeys int
	// Closed, if set, records the segments this Log closes, and lets
	// SignSegment sign a segment recorded there by this or another Log of
	// the same store in this process without reading its entries again
	// (ClosedSegments says when). Share one only between Logs of one store.
	Closed *ClosedSegments
	// CommitHook, if set, sees every batch of new entries before it
	// commits and adds records that commit atomically with them (the
	// transparency tree of package tlog). It needs a store.Batcher.
	CommitHook CommitHook
}

// CommitHook extends state derived from the entries in the same atomic,
// synced store batch as the entries. The Log calls it under its write lock,
// once per batch, in seqno order.
type CommitHook interface {
	// PrepareCommit returns the meta records to commit with rows (the
	// batch's new entries: ascending, contiguous seqnos following the
	// previous batch's). An error fails the batch; nothing is written.
	PrepareCommit(ctx context.Context, rows []wire.EntryRow) (map[string][]byte, error)
	// FinishCommit reports the outcome of the prepared batch: nil when it
	// is durable.
	FinishCommit(err error)
}

// Log is one instance of the audit log over a store: the writer, with the
// read operations of its embedded Reader.
type Log struct {
	*Reader
	st     store.Store
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	sessID string
	bootID string

	mu     sync.Mutex // serialises writers and guards the caches below
	opened bool
	// write-side caches, valid while this instance is the only writer;
	// invalidated on any insert failure. Both per-stream caches are
	// bounded (Options.CacheStreams).
	haveHead   bool
	globalHead uint64
	stamp      stamper              // entry timestamps
	lastHash   *lru[string, []byte] // stream → entry hash of its newest committed entry
	// anchors survive invalidate: the newest entry per stream this
	// instance wrote or verified (tail.go).
	anchors *lru[string, tailAnchor]
	// newestSeg is, per stream, the newest segment this instance closed
	// or found by listing, with its checkpoint hash: the next close links
	// to it without listing the stream's segments (segment.go).
	newestSeg *lru[string, segHead]

	group *batch.Group[Event, BatchResult] // single appends, group-committed
	queue appendQueue                      // the same, pipelined over a batchStarter
	// flights are the started batches whose outcome is not settled yet,
	// oldest first (pipeline.go).
	flights []*flight

	keyMu    sync.Mutex
	keyCache *lru[string, keystore.Key] // bounded: Options.CacheKeys

	haltMu sync.Mutex
	halted map[string]*StreamHaltedError // streams that failed an integrity check (halt.go)
}

// New returns a Log over st. Call Open (or OpenInitialized) before use.
func New(st store.Store, opts Options) *Log {
	l := &Log{st: st, opts: opts,
		lastHash:  newLRU[string, []byte](opts.CacheStreams, DefaultCacheStreams, nil),
		anchors:   newLRU[string, tailAnchor](opts.CacheStreams, DefaultCacheStreams, nil),
		newestSeg: newLRU[string, segHead](opts.CacheStreams, DefaultCacheStreams, nil),
		keyCache:  newLRU[string, keystore.Key](opts.CacheKeys, DefaultCacheKeys, nil)}
	trust := opts.Trust
	if trust == nil && opts.Signer != nil {
		trust = signerTrust{l} // the keystore's public keys
	}
	l.Reader = NewReader(st, ReaderOptions{Trust: trust, KEK: opts.KEK, CacheCheckpoints: opts.CacheCheckpoints})
	l.Reader.writeMu = idleLocker{l}
	l.group = batch.NewGroup(l.commitGroup, maxGroup, 0)
	l.log = opts.Logger
	if l.log == nil {
		l.log = slog.Default()
	}
	l.now = opts.Now
	if l.now == nil {
		l.now = time.Now
	}
	l.sessID = opts.SessionID
	if l.sessID == "" {
		l.sessID = newUUID()
	}
	l.bootID = opts.BootID
	if l.bootID == "" {
		l.bootID = hostBootID()
	}
	return l
}

// Store returns the underlying store.
func (l *Log) Store() store.Store { return l.st }

// SessionID returns the instance's session id (SPEC §5.5).
func (l *Log) SessionID() string { return l.sessID }

// BootID returns the instance's boot id (SPEC §5.5, DECISIONS 20).
func (l *Log) BootID() string { return l.bootID }

// Open initialises the store with config (SPEC §14.1) and runs the startup
// checks. A second Open on the same Log is invalid (DECISIONS 15).
func (l *Log) Open(ctx context.Context, config string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opened {
		return wire.Invalidf("log is already open")
	}
	if err := l.st.Init(ctx, config); err != nil {
		return wire.Storagef(err, "")
	}
	return l.afterOpen(ctx)
}

// OpenInitialized marks a Log whose store was already initialised (for
// example by store.Open) as open and runs the startup checks.
func (l *Log) OpenInitialized(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opened {
		return wire.Invalidf("log is already open")
	}
	return l.afterOpen(ctx)
}

// afterOpen checks every stream recorded in the head file against the
// store (DECISIONS 11): a rollback refuses to open.
func (l *Log) afterOpen(ctx context.Context) error {
	if l.opts.HeadFile != "" {
		if err := l.checkHeadPresent(ctx); err != nil {
			return err
		}
		if err := l.checkAllRollback(ctx); err != nil {
			return err
		}
	}
	l.opened = true
	return nil
}

func (l *Log) checkOpen() error {
	if !l.opened {
		return wire.Storagef(nil, "log not opened: call open first")
	}
	return nil
}

func (l *Log) alert(stream string, err error) {
	l.log.Error("securelog alert", "stream", stream, "err", err)
	if l.opts.OnAlert != nil {
		l.opts.OnAlert(stream, err)
	}
}

func (l *Log) timestamp() string { return wire.FormatTime(l.now()) }

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("securelog: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// hostBootID is /proc/sys/kernel/random/boot_id where present (DECISIONS
// 20), else "rand-" + a random UUID v4.
func hostBootID() string {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id
		}
	}
	return "rand-" + newUUID()
}

func hexs(b []byte) string { return hex.EncodeToString(b) }

func storageErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return wire.Storagef(err, format, args...)
}

func check32(b []byte, what string) error {
	if len(b) != wire.HashLen {
		return wire.Invalidf("%s is not 32 bytes (got %d)", what, len(b))
	}
	return nil
}
