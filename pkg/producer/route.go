package producer

import (
	"context"
	"fmt"
	"time"

	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// Every request of the client goes to the partition that owns its stream
// (issue 14): events to securelog.in.<stream> (default partition) or
// securelog.p.<partition>.in.<stream>, appends, commit lookups, checkpoint
// announcements and store reads to that partition's subjects. The owner
// comes from the partition map (Options.Map, else the SECURELOG_PARTITIONS
// bucket; without one every stream is in the default partition).

// partitionMap returns the map, opening it on first use. While the
// bucket does not exist it is looked for again every noBucketRetry, so a
// long-running client notices partitions added later.
func (c *Client) partitionMap(ctx context.Context) (*partition.Map, error) {
	c.mapMu.Lock()
	defer c.mapMu.Unlock()
	if c.pmap != nil && (c.pmap.HasBucket() || time.Since(c.mapAt) < noBucketRetry) {
		return c.pmap, nil
	}
	m, err := partition.Open(ctx, c.js, partition.OpenConfig{})
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	c.pmap, c.mapAt = m, time.Now()
	return m, nil
}

// noBucketRetry is how long a client without a partition map bucket
// routes everything to the default partition before looking again.
const noBucketRetry = 5 * time.Second

// route returns the partition that owns stream.
func (c *Client) route(ctx context.Context, stream string) (wire.Partition, error) {
	m, err := c.partitionMap(ctx)
	if err != nil {
		return wire.Partition{}, err
	}
	p, err := m.Route(ctx, stream)
	if err != nil {
		return wire.Partition{}, fmt.Errorf("producer: %w", err)
	}
	return p, nil
}

// readerOf returns the read side of partition p's log that
// AwaitCheckpoint uses: over Options.Store if set, else over the
// partition's store RPC on the client's NATS connection, created on first
// use. It is read-only and starts nothing.
func (c *Client) readerOf(ctx context.Context, p wire.Partition) (*securelog.Reader, error) {
	c.rpcMu.Lock()
	defer c.rpcMu.Unlock()
	if rd := c.rds[p.Name()]; rd != nil {
		return rd, nil
	}
	var st store.ReadStore = c.opts.Store
	if st == nil {
		t, err := transport.NewNATS(transport.Config{NATSConn: c.nc, Subject: p.RPCSubject()})
		if err != nil {
			return nil, err
		}
		rs := remote.New(t)
		if err := rs.Init(ctx, "producer"); err != nil {
			return nil, fmt.Errorf("producer: store RPC of partition %s: %w", p.Name(), err)
		}
		c.rpcs[p.Name()], st = rs, rs
	}
	rd := securelog.NewReader(st, securelog.ReaderOptions{})
	c.rds[p.Name()] = rd
	return rd, nil
}

// Route returns the partition that owns stream (for callers that talk to
// the partition themselves).
func (c *Client) Route(ctx context.Context, stream string) (wire.Partition, error) {
	return c.route(ctx, stream)
}
