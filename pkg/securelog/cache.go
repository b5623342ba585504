package securelog

import "container/list"

// Default bounds of the caches of a Log and a Reader (Options.CacheStreams,
// Options.CacheCheckpoints, Options.CacheKeys). Every cache holds at most
// its bound of entries and evicts the least recently used; an evicted
// entry costs store reads, never correctness, except where said.
const (
	// DefaultCacheStreams bounds the per-stream write caches of a Log: the
	// entry hash of each stream's newest entry, and each stream's tail
	// anchor (the newest entry it wrote or verified, tail.go). A stream
	// whose cached hash was evicted costs one store read at its next
	// append; one whose anchor was evicted has its unsealed tail (at most
	// tailCheckWindow seqnos) verified again, and loses the in-process
	// rollback check against the anchor (the head file still checks).
	DefaultCacheStreams = 1 << 16
	// DefaultCacheCheckpoints bounds the recomputed checkpoint hashes a
	// Reader keeps (by segment id, and by hash for the link check). An
	// evicted hash is recomputed from the store (one entry read).
	DefaultCacheCheckpoints = 1 << 14
	// DefaultCacheKeys bounds the keystore keys a Log keeps by identity.
	// An evicted key is resolved from the keystore again.
	DefaultCacheKeys = 256
)

// lru is a map holding at most max entries: putting one more evicts the
// least recently used (get and put count as use). onEvict, if set, sees
// every evicted entry. Not safe for concurrent use; the owner locks.
type lru[K comparable, V any] struct {
	max     int
	order   *list.List // front: most recently used; values are *lruEntry
	items   map[K]*list.Element
	onEvict func(K, V)
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

// newLRU returns an empty lru of at most max entries (max ≤ 0: def).
func newLRU[K comparable, V any](max, def int, onEvict func(K, V)) *lru[K, V] {
	if max <= 0 {
		max = def
	}
	return &lru[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}, onEvict: onEvict}
}

// get returns the value of k and marks it used.
func (c *lru[K, V]) get(k K) (V, bool) {
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).val, true
}

// put sets k to v, evicting the least recently used entry when full.
func (c *lru[K, V]) put(k K, v V) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v})
	for len(c.items) > c.max {
		c.remove(c.order.Back())
	}
}

// remove drops one element, telling onEvict.
func (c *lru[K, V]) remove(e *list.Element) {
	ent := c.order.Remove(e).(*lruEntry[K, V])
	delete(c.items, ent.key)
	if c.onEvict != nil {
		c.onEvict(ent.key, ent.val)
	}
}

// clear drops every entry (without onEvict).
func (c *lru[K, V]) clear() {
	c.order.Init()
	clear(c.items)
}

// len returns the number of entries.
func (c *lru[K, V]) len() int { return len(c.items) }
