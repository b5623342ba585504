package partition

import (
	"context"
	"fmt"

	"github.com/securelog/securelog/pkg/wire"
)

// httpPrefix keys a partition's HTTP address: http.<partition> → the URL
// its ingester's listener (store RPC, query API, console) is reached at.
const httpPrefix = "http."

// HTTPKey returns the bucket key of partition's HTTP address.
func HTTPKey(partition string) string { return httpPrefix + partition }

// SetHTTP records the URL of partition's HTTP listener (each start of its
// ingester sets it again), so that one partition's query API can forward
// requests about another partition's streams.
func (m *Map) SetHTTP(ctx context.Context, partition, url string) error {
	if err := wire.CheckPartitionName(partition); err != nil {
		return err
	}
	if m.kv == nil {
		return ErrNoMap
	}
	if err := m.kv.Put(ctx, HTTPKey(partition), []byte(url)); err != nil {
		return fmt.Errorf("record the HTTP address of partition %q: %w", partition, err)
	}
	return nil
}

// HTTP returns the URL of partition's HTTP listener, if one is recorded.
func (m *Map) HTTP(ctx context.Context, partition string) (string, bool, error) {
	if m.kv == nil {
		return "", false, nil
	}
	v, ok, err := m.kv.Get(ctx, HTTPKey(partition))
	if err != nil {
		return "", false, fmt.Errorf("read the HTTP address of partition %q: %w", partition, err)
	}
	return string(v), ok, nil
}
