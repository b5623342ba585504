package partition

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/securelog/securelog/pkg/wire"
)

// KV is the key-value bucket the map lives in (JetStreamKV in production,
// MemoryKV in tests).
type KV interface {
	// Get returns the value of key, or ok == false if it has none.
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	// Create sets key to value only if it has no value; created is false
	// (and err nil) if it already had one.
	Create(ctx context.Context, key string, value []byte) (created bool, err error)
	// All returns every key with its value.
	All(ctx context.Context) (map[string][]byte, error)
	// Put sets key to value.
	Put(ctx context.Context, key string, value []byte) error
}

// ErrNoMap is returned by changes to a map without a bucket (nothing has
// created SECURELOG_PARTITIONS on this NATS system yet).
var ErrNoMap = errors.New("no partition map: the JetStream KV bucket " + Bucket + " does not exist (an ingester or 'securelog partitions add' creates it)")

// DefaultAbsentTTL is how long Map caches that a stream is unassigned.
const DefaultAbsentTTL = time.Second

// Map reads and changes the partition map. Owners are cached for good (an
// assignment is permanent); that a stream is unassigned is cached for
// AbsentTTL. A Map without a KV (New(nil)) routes everything to the
// default partition. It is safe for concurrent use.
type Map struct {
	kv KV
	// AbsentTTL overrides DefaultAbsentTTL (set before first use).
	AbsentTTL time.Duration

	mu     sync.Mutex
	owners map[string]string
	absent map[string]time.Time
}

// New returns the map kept in kv (nil: no map, everything is default).
func New(kv KV) *Map {
	return &Map{kv: kv, owners: map[string]string{}, absent: map[string]time.Time{}}
}

// HasBucket reports whether the map is kept in a bucket.
func (m *Map) HasBucket() bool { return m.kv != nil }

// Snapshot reads the whole map.
func (m *Map) Snapshot(ctx context.Context) (Snapshot, error) {
	s := Snapshot{Owners: map[string]string{}}
	if m.kv == nil {
		s.Partitions = sortPartitions(nil)
		return s, nil
	}
	all, err := m.kv.All(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read partition map: %w", err)
	}
	var parts []string
	for k, v := range all {
		stream, part, err := ParseKey(k)
		if err != nil {
			continue // not ours; ignored
		}
		if part != "" {
			parts = append(parts, part)
		} else {
			s.Owners[stream] = string(v)
		}
	}
	s.Partitions = sortPartitions(parts)
	m.mu.Lock()
	for st, p := range s.Owners {
		m.owners[st] = p
	}
	m.mu.Unlock()
	return s, nil
}

// Partitions returns the known partitions, DefaultPartition first.
func (m *Map) Partitions(ctx context.Context) ([]string, error) {
	s, err := m.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s.Partitions, nil
}

// Check returns nil if name is a known partition, else an
// *wire.UnknownPartitionError naming the known ones (or the
// *wire.InvalidError of a malformed name).
func (m *Map) Check(ctx context.Context, name string) error {
	if err := wire.CheckPartitionName(name); err != nil {
		return err
	}
	if name == wire.DefaultPartition {
		return nil
	}
	if m.kv != nil {
		_, ok, err := m.kv.Get(ctx, PartitionKey(name))
		if err != nil {
			return fmt.Errorf("read partition map: %w", err)
		}
		if ok {
			return nil
		}
	}
	known, err := m.Partitions(ctx)
	if err != nil {
		return err
	}
	return &wire.UnknownPartitionError{Name: name, Known: known}
}

// Add registers partition name; added is false if it was known already.
func (m *Map) Add(ctx context.Context, name string) (added bool, err error) {
	if err := wire.CheckPartitionName(name); err != nil {
		return false, err
	}
	if name == wire.DefaultPartition {
		return false, nil
	}
	if m.kv == nil {
		return false, ErrNoMap
	}
	added, err = m.kv.Create(ctx, PartitionKey(name), []byte(name))
	if err != nil {
		return false, fmt.Errorf("add partition %q: %w", name, err)
	}
	return added, nil
}

// Owner returns stream's partition and whether it was assigned (false:
// the default rule applies, the stream goes to the default partition).
func (m *Map) Owner(ctx context.Context, stream string) (string, bool, error) {
	m.mu.Lock()
	if p, ok := m.owners[stream]; ok {
		m.mu.Unlock()
		return p, true, nil
	}
	if until, ok := m.absent[stream]; ok && time.Now().Before(until) {
		m.mu.Unlock()
		return wire.DefaultPartition, false, nil
	}
	m.mu.Unlock()
	if m.kv == nil {
		return wire.DefaultPartition, false, nil
	}
	v, ok, err := m.kv.Get(ctx, StreamKey(stream))
	if err != nil {
		return "", false, fmt.Errorf("look up the partition of stream %q: %w", stream, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !ok {
		ttl := m.AbsentTTL
		if ttl <= 0 {
			ttl = DefaultAbsentTTL
		}
		m.absent[stream] = time.Now().Add(ttl)
		return wire.DefaultPartition, false, nil
	}
	m.owners[stream] = string(v)
	delete(m.absent, stream)
	return string(v), true, nil
}

// Route returns the partition stream's requests go to.
func (m *Map) Route(ctx context.Context, stream string) (wire.Partition, error) {
	name, _, err := m.Owner(ctx, stream)
	if err != nil {
		return wire.Partition{}, err
	}
	return wire.NewPartition(name)
}

// Assign gives stream to partition for good: partition must be known; a
// stream that already belongs to another partition is refused with a
// *wire.PartitionConflictError naming its owner. Assigning a stream to
// its owner again is a no-op.
func (m *Map) Assign(ctx context.Context, stream, partition string) error {
	if err := wire.CheckStreamToken(stream); err != nil {
		return err
	}
	if err := m.Check(ctx, partition); err != nil {
		return err
	}
	return m.Claim(ctx, stream, partition)
}

// Claim is Assign without checking that partition is registered: an
// ingester claims each stream for its own partition at its first event.
func (m *Map) Claim(ctx context.Context, stream, partition string) error {
	if m.kv == nil {
		if partition == wire.DefaultPartition {
			return nil // without a map everything is default already
		}
		return ErrNoMap
	}
	if p, ok := m.cached(stream); ok {
		return conflict(stream, p, partition)
	}
	created, err := m.kv.Create(ctx, StreamKey(stream), []byte(partition))
	if err != nil {
		return fmt.Errorf("assign stream %q to partition %q: %w", stream, partition, err)
	}
	owner := partition
	if !created {
		v, err := m.readExisting(ctx, stream)
		if err != nil {
			return err
		}
		owner = string(v)
	}
	m.mu.Lock()
	m.owners[stream] = owner
	delete(m.absent, stream)
	m.mu.Unlock()
	return conflict(stream, owner, partition)
}

// readExisting reads the owner of stream, whose key exists (a create of
// it was refused). A replicated bucket may answer a read from a replica
// that has not applied the write yet: the read is retried for up to
// ownerReadWait.
func (m *Map) readExisting(ctx context.Context, stream string) ([]byte, error) {
	deadline := time.Now().Add(ownerReadWait)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		v, ok, err := m.kv.Get(ctx, StreamKey(stream))
		if err != nil {
			return nil, fmt.Errorf("read the owner of stream %q: %w", stream, err)
		}
		if ok {
			return v, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("stream %q is in the partition map but has no owner after %v (deleted key?)", stream, ownerReadWait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("read the owner of stream %q: %w", stream, ctx.Err())
		case <-t.C:
		}
	}
}

// ownerReadWait bounds how long Claim waits for a lagging replica to show
// an existing stream's owner.
const ownerReadWait = 10 * time.Second

func (m *Map) cached(stream string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.owners[stream]
	return p, ok
}

func conflict(stream, owner, want string) error {
	if owner == want {
		return nil
	}
	return &wire.PartitionConflictError{Stream: stream, Owner: owner, Want: want}
}
