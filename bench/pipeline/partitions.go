package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// partitionResult is one partition's share of a -partitions run.
type partitionResult struct {
	name    string
	events  int
	elapsed time.Duration // from the start to its last commit
}

// runPartitions measures n partitions on one JetStream server in one
// process (issue 14): each has its own store, ingester, sealer and signer
// (internal/node, as `securelog ingester|sealer|signer --partition P`) and
// one stream; o.producers clients per partition publish o.events/n events
// in total to it, o.window in flight each, every event awaited to
// committed. It prints per-partition and aggregate committed/s.
func runPartitions(o options, n int) error {
	dir, err := os.MkdirTemp("", "bench-partitions")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), SyncAlways: o.always})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	url := ns.ClientURL()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	m, err := partition.Open(ctx, js, partition.OpenConfig{Create: true})
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	names := make([]string, n)
	var wg sync.WaitGroup
	wctx, wcancel := context.WithCancel(ctx)
	defer func() { wcancel(); wg.Wait() }()
	for i := range n {
		names[i] = wire.DefaultPartition
		if i > 0 {
			names[i] = fmt.Sprintf("p%d", i)
		}
		if _, err := m.Add(ctx, names[i]); err != nil {
			return err
		}
		if err := m.Assign(ctx, "bench-"+names[i], names[i]); err != nil {
			return err
		}
		info, err := node.PrepareData(filepath.Join(dir, names[i]), pipeline.DefaultIdentity)
		if err != nil {
			return err
		}
		natsc := node.NATSClient{URL: url}
		run := func(f func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(); err != nil && wctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "partition %s: %v\n", names[i], err)
				}
			}()
		}
		run(func() error {
			return node.RunIngester(wctx, node.IngesterConfig{NATS: natsc, Partition: names[i], Store: node.StoreConfig{Spec: info.StoreSpec},
				HeadFile: info.HeadFile, KEKFile: info.KEKFile, Logger: logger, Tlog: node.TlogConfig{Off: *noTlog}})
		})
		run(func() error {
			return node.RunSealer(wctx, node.SealerConfig{NATS: natsc, Partition: names[i], Logger: logger})
		})
		run(func() error {
			return node.RunSigner(wctx, node.SignerConfig{NATS: natsc, Partition: names[i], Keystore: node.KeystoreConfig{Dir: info.KeysDir},
				TrustFile: info.TrustFile, HeadFile: filepath.Join(dir, names[i], "signer.heads.json"), KEKFile: info.KEKFile, Logger: logger,
				Tlog: node.TlogConfig{Off: true}})
		})
	}
	// Wait until every partition's store RPC answers (its ingester runs).
	for _, name := range names {
		p := wire.MustPartition(name)
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, err := node.RPCClient{Transport: node.TransportNATS, Conn: nc, Subject: p.RPCSubject()}.Open(ctx, "bench")
			if err == nil {
				st.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("partition %s did not start: %w", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	per := o.events / (n * o.producers)
	results := make([]partitionResult, n)
	errc := make(chan error, n*o.producers)
	start := time.Now()
	var pw sync.WaitGroup
	var mu sync.Mutex
	for i, name := range names {
		results[i].name = name
		for p := range o.producers {
			pw.Add(1)
			go func() {
				defer pw.Done()
				if err := produce(ctx, url, fmt.Sprintf("bench-%s-%d", name, p), "bench-"+name, per, o); err != nil {
					errc <- err
					return
				}
				mu.Lock()
				results[i].events += per
				results[i].elapsed = max(results[i].elapsed, time.Since(start))
				mu.Unlock()
			}()
		}
	}
	pw.Wait()
	total := time.Since(start)
	select {
	case err := <-errc:
		return err
	default:
	}
	fmt.Printf("partitions: %d on one JetStream server, %d producers per partition, window %d\n", n, o.producers, o.window)
	sum := 0
	for _, r := range results {
		fmt.Printf("  partition %-8s %7d events  committed %9.0f entries/s\n", r.name, r.events, float64(r.events)/r.elapsed.Seconds())
		sum += r.events
	}
	fmt.Printf("  aggregate          %7d events  committed %9.0f entries/s (%.2f s)\n", sum, float64(sum)/total.Seconds(), total.Seconds())
	return nil
}

// produce publishes count events to stream with o.window in flight and
// waits until every one is committed.
func produce(ctx context.Context, url, name, stream string, count int, o options) error {
	nc, err := nats.Connect(url, nats.Name(name))
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := producer.New(nc, producer.Options{MaxPending: o.window})
	if err != nil {
		return err
	}
	defer c.Close()
	q := make(chan *producer.Future, o.window)
	waitErr := make(chan error, 1)
	go func() {
		var first error
		for f := range q {
			if _, err := f.Wait(ctx); err != nil && first == nil {
				first = err
			}
		}
		waitErr <- first
	}()
	for i := range count {
		f, err := c.Publish(ctx, stream, producer.Event{Type: "bench", Severity: wire.Info, Producer: name, Payload: payload(o.size, i)})
		if err != nil {
			close(q)
			return errors.Join(err, <-waitErr)
		}
		q <- f
	}
	close(q)
	return <-waitErr
}
