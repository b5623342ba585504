package cli

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Client commands over a remote store on NATS talk to the partition that
// owns their stream (issue 14): the partition map routes them, --partition
// overrides it, and commands without a stream (read SEQNO, prove SEQNO,
// ...) use --partition or the default partition. Cross-stream listings
// (streams list) ask every partition and merge. Over HTTP, --rpc-url names
// one partition's server.

// remoteOverNATS reports whether --store is a remote store reached over NATS.
func (a *app) remoteOverNATS() bool {
	backend, _, err := store.ParseSpec(a.storeSpec)
	return err == nil && backend == "remote" && (a.transport == "" || a.transport == node.TransportNATS)
}

// partitionMap opens the partition map over --nats (nil, nil if no map
// is needed: not a remote store over NATS).
func (a *app) partitionMap(ctx context.Context) (*partition.Map, func(), error) {
	if !a.remoteOverNATS() {
		return nil, func() {}, nil
	}
	c, err := a.withCreds(node.NATSClient{URL: a.natsURL}, node.RoleAdmin)
	if err != nil {
		return nil, nil, err
	}
	nc, err := c.Connect("securelog-route")
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	m, err := partition.Open(ctx, js, partition.OpenConfig{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return m, nc.Close, nil
}

// routeOf returns the partition a command about stream ("" = none) talks
// to: --partition (which must be known), else the stream's owner in the
// map, else the default partition.
func (a *app) routeOf(ctx context.Context, stream string) (wire.Partition, error) {
	if !a.remoteOverNATS() {
		return wire.NewPartition(a.partition)
	}
	m, closeFn, err := a.partitionMap(ctx)
	if err != nil {
		return wire.Partition{}, err
	}
	defer closeFn()
	if a.partition != "" {
		if err := m.Check(ctx, a.partition); err != nil {
			return wire.Partition{}, usageOrErr(err)
		}
		return wire.NewPartition(a.partition)
	}
	if stream == "" {
		return wire.Partition{}, nil
	}
	p, err := m.Route(ctx, stream)
	if err != nil {
		return wire.Partition{}, fmt.Errorf("route stream %q: %w", stream, err)
	}
	return p, nil
}

// fanOut returns the partitions a cross-stream listing asks: --partition
// alone, else every partition of the map (just the default one when the
// store is not remote over NATS).
func (a *app) fanOut(ctx context.Context) ([]wire.Partition, error) {
	if a.partition != "" || !a.remoteOverNATS() {
		p, err := a.routeOf(ctx, "")
		return []wire.Partition{p}, err
	}
	m, closeFn, err := a.partitionMap(ctx)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	names, err := m.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Partition, 0, len(names))
	for _, n := range names {
		p, err := wire.NewPartition(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
