package partition

import (
	"context"
	"maps"
	"sync"
)

// MemoryKV is an in-memory KV (tests, and single-process tools).
type MemoryKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemoryKV returns an empty MemoryKV.
func NewMemoryKV() *MemoryKV { return &MemoryKV{m: map[string][]byte{}} }

// Get implements KV.
func (k *MemoryKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok, nil
}

// Create implements KV.
func (k *MemoryKV) Create(_ context.Context, key string, value []byte) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[key]; ok {
		return false, nil
	}
	k.m[key] = append([]byte(nil), value...)
	return true, nil
}

// All implements KV.
func (k *MemoryKV) All(context.Context) (map[string][]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.m), nil
}

// Put implements KV.
func (k *MemoryKV) Put(_ context.Context, key string, value []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = append([]byte(nil), value...)
	return nil
}
