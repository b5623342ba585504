package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// DefaultCheckpointInterval is the shortest time between two checkpoints.
const DefaultCheckpointInterval = time.Second

// CheckpointSubject is the NATS subject on which each new checkpoint (the
// signed note, cosigned when witnesses are configured) is announced
// (wire.TlogCheckpointSubject; it collides with no per-stream subject).
const CheckpointSubject = wire.TlogCheckpointSubject

// TreeSource is the tree a checkpointer signs: its committed head and its
// tiles (*Tree is one).
type TreeSource interface {
	Head(ctx context.Context) (int64, tlog.Hash, error)
	Tiles(ctx context.Context) TileReader
}

// CheckpointStore persists the latest signed checkpoint note. Save must be
// durable when it returns nil.
type CheckpointStore interface {
	// Load returns the stored note, or nil if there is none.
	Load(ctx context.Context) ([]byte, error)
	Save(ctx context.Context, signed []byte) error
}

// CheckpointKey is the store meta record of the latest signed checkpoint.
const CheckpointKey = "tlog/checkpoint"

// CosignedCheckpointKey is the store meta record of the latest cosigned
// checkpoint.
const CosignedCheckpointKey = "tlog/checkpoint-cosigned"

// MetaCheckpoints is a CheckpointStore in store meta records (a meta-only
// synced CommitBatch), beside the tree.
type MetaCheckpoints struct {
	Store store.Batcher
	// Key is the meta key (CheckpointKey if empty).
	Key string
}

func (m MetaCheckpoints) key() string {
	if m.Key == "" {
		return CheckpointKey
	}
	return m.Key
}

// Load returns the stored checkpoint note, or nil.
func (m MetaCheckpoints) Load(ctx context.Context) ([]byte, error) {
	v, ok, err := m.Store.GetMeta(ctx, m.key())
	if err != nil || !ok {
		return nil, err
	}
	return v, nil
}

// Save stores the note durably.
func (m MetaCheckpoints) Save(ctx context.Context, signed []byte) error {
	return m.Store.CommitBatch(ctx, store.Batch{Meta: map[string][]byte{m.key(): signed}})
}

// CheckpointerConfig configures a Checkpointer.
type CheckpointerConfig struct {
	// Tree is the tree to checkpoint. Required.
	Tree TreeSource
	// Signer signs the note; its name must equal Origin (NewNoteSigner
	// over the log's Ed25519 keystore key). Required.
	Signer note.Signer
	// Origin is the checkpoint origin (DefaultOrigin of the signing
	// identity, typically).
	Origin string
	// Store persists the latest signed checkpoint. Required.
	Store CheckpointStore
	// Cosigned, if set, persists the latest cosigned checkpoint (what
	// /checkpoint serves when a Cosigner is configured).
	Cosigned CheckpointStore
	// Interval is the shortest time between checkpoints
	// (DefaultCheckpointInterval).
	Interval time.Duration
	// Poll is how often Run looks at the tree (Interval/10, at least
	// 10 ms, if 0): a tree that grows after a quiet period is signed
	// within Poll, not within Interval.
	Poll time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Cosign, if set, is the witness policy: it gets each new signed
	// checkpoint and returns it with witness cosignatures (for example
	// tlogwitness.Client.CosignFunc). A nil error means the cosigned
	// note satisfies the policy (the checkpoint is witnessed); an error
	// (with or without a partially cosigned note) means it does not: it
	// is logged, the note is announced anyway, and the same checkpoint is
	// submitted again at the next tick until it is witnessed or a newer
	// one is signed.
	Cosign func(ctx context.Context, signed []byte) ([]byte, error)
	// Publish, if set, announces each new checkpoint (for example on
	// CheckpointSubject); an error is logged.
	Publish func(signed []byte) error
	// OnAlert is called when the checkpointer refuses to sign a tree that
	// is inconsistent with its last signed checkpoint.
	OnAlert func(err error)
	Logger  *slog.Logger
}

// InconsistentTreeError is the refusal to sign a tree that is not an
// extension of the last signed checkpoint.
type InconsistentTreeError struct {
	Signed  Checkpoint // the last signed checkpoint
	Size    int64      // the tree now
	Root    tlog.Hash
	Problem string
}

func (e *InconsistentTreeError) Error() string {
	return fmt.Sprintf("refusing to sign tree size %d root %s: %s (last signed checkpoint: size %d root %s)",
		e.Size, EncodeHash(e.Root), e.Problem, e.Signed.Size, EncodeHash(e.Signed.Root))
}

// Checkpointer signs a C2SP checkpoint of the tree whenever it grew, at
// most every Interval. It never signs two inconsistent checkpoints: before
// signing it proves the new tree consistent with the persisted last
// signed one (tlog.ProveTree, checked with tlog.CheckTree) and refuses
// otherwise, with an alert.
type Checkpointer struct {
	cfg CheckpointerConfig
	log *slog.Logger

	mu       sync.Mutex
	last     Checkpoint // last signed
	signed   []byte     // its note
	cosigned []byte     // its note with the cosignatures collected so far
	// witnessed is the latest note that satisfies the witness policy
	// (the latest signed one when there is no policy) and wsize its size.
	witnessed []byte
	wsize     int64
	// tried is when the last checkpoint was signed or submitted to the
	// witnesses: Run waits Interval after it.
	tried  time.Time
	loaded bool
	notify chan struct{}
}

// NewCheckpointer checks cfg.
func NewCheckpointer(cfg CheckpointerConfig) (*Checkpointer, error) {
	if cfg.Tree == nil || cfg.Signer == nil || cfg.Store == nil {
		return nil, errors.New("checkpointer: Tree, Signer and Store are required")
	}
	if !ValidOrigin(cfg.Origin) {
		return nil, fmt.Errorf("checkpointer: origin %q is empty or has a space, '+' or control character", cfg.Origin)
	}
	if cfg.Signer.Name() != cfg.Origin {
		return nil, fmt.Errorf("checkpointer: note key name %q differs from the origin %q", cfg.Signer.Name(), cfg.Origin)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCheckpointInterval
	}
	if cfg.Poll <= 0 {
		cfg.Poll = max(cfg.Interval/10, 10*time.Millisecond)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Checkpointer{cfg: cfg, log: cfg.Logger.With("worker", "checkpointer"), notify: make(chan struct{})}, nil
}

// Latest returns the note /checkpoint serves: the latest checkpoint that
// satisfies the witness policy, with its cosignatures (the latest signed
// one when no policy is configured), or nil before the first one.
func (c *Checkpointer) Latest() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.witnessed
}

// Witnessed returns Latest and its tree size, and whether a witness
// policy is configured (Cosign is set).
func (c *Checkpointer) Witnessed() (note []byte, size int64, policy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.witnessed, c.wsize, c.cfg.Cosign != nil
}

// LatestSigned returns the latest checkpoint signed by the log and its
// note.
func (c *Checkpointer) LatestSigned() (Checkpoint, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.signed
}

// Changed returns a channel closed when Latest changes.
func (c *Checkpointer) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notify
}

func (c *Checkpointer) load(ctx context.Context) error {
	if c.loaded {
		return nil
	}
	msg, err := c.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("checkpointer: load last signed checkpoint: %w", err)
	}
	if msg != nil {
		text, _, err := SplitNote(msg)
		if err != nil {
			return fmt.Errorf("checkpointer: stored checkpoint: %w", err)
		}
		ck, err := ParseCheckpoint(text)
		if err != nil {
			return fmt.Errorf("checkpointer: stored checkpoint: %w", err)
		}
		if ck.Origin != c.cfg.Origin {
			return fmt.Errorf("checkpointer: stored checkpoint has origin %q, configured origin is %q (a new origin is a new log)", ck.Origin, c.cfg.Origin)
		}
		c.last, c.signed, c.cosigned = ck, msg, msg
		if c.cfg.Cosign == nil {
			c.witnessed, c.wsize = msg, ck.Size
		}
	}
	if c.cfg.Cosign != nil && c.cfg.Cosigned != nil {
		// The latest witnessed checkpoint: the signed one, or an older
		// one while the signed one still waits for its witnesses.
		co, err := c.cfg.Cosigned.Load(ctx)
		if err != nil {
			return fmt.Errorf("checkpointer: load last witnessed checkpoint: %w", err)
		}
		if co != nil {
			t, _, err := SplitNote(co)
			if err != nil {
				return fmt.Errorf("checkpointer: stored witnessed checkpoint: %w", err)
			}
			wc, err := ParseCheckpoint(t)
			if err != nil || wc.Origin != c.cfg.Origin || wc.Size > c.last.Size {
				return fmt.Errorf("checkpointer: stored witnessed checkpoint (size %d, origin %q) does not precede the signed one (size %d): %v", wc.Size, wc.Origin, c.last.Size, err)
			}
			c.witnessed, c.wsize = co, wc.Size
			if bytes.Equal(t, c.last.Text()) {
				c.cosigned = co
			}
		}
	}
	c.loaded = true
	return nil
}

// Step signs and publishes a checkpoint if the tree grew since the last
// one (or none was ever signed). It reports whether it signed. With a
// witness policy, a signed checkpoint that is not yet witnessed is
// submitted again when the tree did not grow.
func (c *Checkpointer) Step(ctx context.Context) (bool, error) {
	c.mu.Lock()
	if err := c.load(ctx); err != nil {
		c.mu.Unlock()
		return false, err
	}
	last, have, signed := c.last, c.signed != nil, c.signed
	pending := have && c.cfg.Cosign != nil && c.wsize != last.Size
	c.mu.Unlock()
	size, root, err := c.cfg.Tree.Head(ctx)
	if err != nil {
		return false, fmt.Errorf("checkpointer: tree head: %w", err)
	}
	if have && size == last.Size && root == last.Root {
		if pending {
			return false, c.cosign(ctx, last, signed)
		}
		return false, nil
	}
	if have {
		if err := c.consistent(ctx, last, size, root); err != nil {
			var bad *InconsistentTreeError
			if !errors.As(err, &bad) {
				return false, err // the tiles could not be read: retried
			}
			if c.cfg.OnAlert != nil {
				c.cfg.OnAlert(err)
			}
			c.log.Error("checkpointer alert", "err", err)
			return false, err
		}
	}
	ck := Checkpoint{Origin: c.cfg.Origin, Size: size, Root: root}
	signed, err = SignCheckpoint(ck, c.cfg.Signer)
	if err != nil {
		return false, fmt.Errorf("checkpointer: sign size %d: %w", size, err)
	}
	if err := c.cfg.Store.Save(ctx, signed); err != nil {
		return false, fmt.Errorf("checkpointer: store checkpoint size %d: %w", size, err)
	}
	c.mu.Lock()
	c.last, c.signed, c.cosigned, c.tried = ck, signed, signed, c.cfg.Now()
	if c.cfg.Cosign == nil {
		c.witnessed, c.wsize = signed, size
		c.changed()
	}
	c.mu.Unlock()
	c.log.Debug("checkpoint signed", "origin", ck.Origin, "size", size)
	if c.cfg.Cosign == nil {
		c.publish(size, signed)
		return true, nil
	}
	// The error (not witnessed yet) is logged; the next Step retries.
	_ = c.cosign(ctx, ck, signed)
	return true, nil
}

// cosign submits the signed checkpoint ck to the witness policy, records
// the cosignatures and announces the result.
func (c *Checkpointer) cosign(ctx context.Context, ck Checkpoint, signed []byte) error {
	co, err := c.cfg.Cosign(ctx, signed)
	if co == nil {
		co = signed
	}
	c.mu.Lock()
	c.tried = c.cfg.Now()
	stale := c.last.Size != ck.Size // a newer checkpoint was signed meanwhile
	if !stale {
		c.cosigned = co
	}
	if err == nil && ck.Size > c.wsize {
		c.witnessed, c.wsize = co, ck.Size
		c.changed()
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("checkpoint not witnessed yet", "size", ck.Size, "err", err)
	} else if c.cfg.Cosigned != nil {
		if err := c.cfg.Cosigned.Save(ctx, co); err != nil {
			c.log.Warn("store witnessed checkpoint", "size", ck.Size, "err", err)
		}
	}
	c.publish(ck.Size, co)
	return err
}

// changed wakes the Changed waiters; c.mu is held.
func (c *Checkpointer) changed() {
	close(c.notify)
	c.notify = make(chan struct{})
}

func (c *Checkpointer) publish(size int64, msg []byte) {
	if c.cfg.Publish != nil {
		if err := c.cfg.Publish(msg); err != nil {
			c.log.Warn("announce checkpoint", "size", size, "err", err)
		}
	}
}

// consistent proves the tree (size, root) an extension of last.
func (c *Checkpointer) consistent(ctx context.Context, last Checkpoint, size int64, root tlog.Hash) error {
	bad := func(problem string) error {
		return &InconsistentTreeError{Signed: last, Size: size, Root: root, Problem: problem}
	}
	switch {
	case size < last.Size:
		return bad("the tree is smaller than the last signed checkpoint (rollback)")
	case size == last.Size:
		return bad("same size, different root")
	}
	// A tile that cannot be read (the tree's server is slow or down) is
	// no evidence against the tree: that error is returned as it is, to
	// be retried, never alerted as an inconsistency.
	tiles := &readErrors{tr: c.cfg.Tree.Tiles(ctx)}
	r := TileHashes(tiles)
	bad = func(problem string) error {
		if err := tiles.first(); err != nil {
			return fmt.Errorf("checkpointer: read the tree's tiles: %w", err)
		}
		return &InconsistentTreeError{Signed: last, Size: size, Root: root, Problem: problem}
	}
	if last.Size > 0 {
		p, err := tlog.ProveTree(size, last.Size, r)
		if err != nil {
			return bad("no consistency proof: " + err.Error())
		}
		if err := tlog.CheckTree(p, size, root, last.Size, last.Root); err != nil {
			return bad("consistency proof fails: " + err.Error())
		}
	}
	// The root must also be the tree's own hash at size (the head and
	// tiles agree).
	h, err := tlog.TreeHash(size, r)
	if err != nil {
		return bad("tree hash: " + err.Error())
	}
	if h != root {
		return bad("the tiles hash to " + EncodeHash(h))
	}
	return nil
}

// readErrors is a TileReader that remembers its first read error.
type readErrors struct {
	tr  TileReader
	mu  sync.Mutex
	err error
}

func (r *readErrors) ReadTile(id TileID) ([]byte, bool, error) {
	data, ok, err := r.tr.ReadTile(id)
	if err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	return data, ok, err
}

func (r *readErrors) first() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Run looks at the tree every Poll and checkpoints when it grew and the
// last checkpoint is at least Interval old, until ctx ends (then returns
// nil). A refused (inconsistent) tree is alerted and retried; it is never
// signed. While attempts fail (the tree cannot be read, the signer is
// unavailable), Run backs off from Poll up to Interval between attempts,
// and a repeated error is logged once per warnEvery.
func (c *Checkpointer) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Poll)
	defer t.Stop()
	var (
		backoff  time.Duration // 0 while attempts succeed
		retryAt  time.Time
		lastMsg  string
		lastWarn time.Time
		repeats  int
	)
	for {
		now := c.cfg.Now()
		c.mu.Lock()
		due := now.Sub(c.tried) >= c.cfg.Interval && !now.Before(retryAt)
		c.mu.Unlock()
		if due {
			_, err := c.Step(ctx)
			switch {
			case err == nil || ctx.Err() != nil:
				if lastMsg != "" && ctx.Err() == nil {
					c.log.Info("checkpointing again", "failed_attempts", repeats+1)
				}
				backoff, retryAt, lastMsg, repeats = 0, time.Time{}, "", 0
			default:
				backoff = min(max(2*backoff, c.cfg.Poll), c.cfg.Interval)
				retryAt = c.cfg.Now().Add(backoff)
				var inc *InconsistentTreeError
				if msg := err.Error(); errors.As(err, &inc) {
					// alerted and logged by Step
				} else if msg != lastMsg || c.cfg.Now().Sub(lastWarn) >= warnEvery {
					c.log.Warn("checkpoint failed", "err", err, "repeated", repeats, "retry_in", backoff)
					lastMsg, lastWarn, repeats = msg, c.cfg.Now(), 0
				} else {
					repeats++
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// warnEvery is how often Run repeats a warning for the same failure.
const warnEvery = 30 * time.Second
