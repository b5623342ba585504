package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/wire"
)

// rawServer starts a fresh embedded server with the pipeline's streams and
// the given sync setting; the returned function removes it.
func rawServer(always bool) (*server.Server, *nats.Conn, func(), error) {
	dir, err := os.MkdirTemp("", "bench-raw")
	if err != nil {
		return nil, nil, nil, err
	}
	ns, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: dir, SyncAlways: always})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		err = pipeline.EnsureStreams(context.Background(), js, pipeline.StreamConfig{})
	}
	cleanup := func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown(); os.RemoveAll(dir) }
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return ns, nc, cleanup, nil
}

// publishAll publishes n messages asynchronously (4096 in flight, each
// with a message id, as the producer SDK does) and waits for the acks.
func publishAll(nc *nats.Conn, n, size int) error {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	for i := range n {
		m := nats.NewMsg("securelog.in.raw")
		m.Data = payload(size, i)
		m.Header.Set(wire.MsgIDHeader, fmt.Sprint(i))
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("raw publishes not acknowledged")
	}
}

// rawPublishRate is JetStream alone: async publishes to a file stream on a
// fresh server with the same sync setting (the issue's "raw JetStream
// async" baseline).
func rawPublishRate(n, size int, always bool) (float64, error) {
	_, nc, cleanup, err := rawServer(always)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	start := time.Now()
	if err := publishAll(nc, n, size); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// rawEndToEnd publishes n messages as rawPublishRate does while an ordered
// consumer (no acknowledgements) drains the stream on its own connection:
// n ÷ the time until the last one was delivered.
func rawEndToEnd(n, size int, always bool) (float64, error) {
	ns, nc, cleanup, err := rawServer(always)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	cnc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return 0, err
	}
	defer cnc.Close()
	cjs, err := jetstream.New(cnc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cons, err := cjs.OrderedConsumer(ctx, wire.InStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() {
		it, err := cons.Messages(jetstream.PullMaxMessages(1000))
		if err != nil {
			done <- err
			return
		}
		defer it.Stop()
		for range n {
			if _, err := it.Next(jetstream.NextContext(ctx)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	start := time.Now()
	if err := publishAll(nc, n, size); err != nil {
		return 0, err
	}
	if err := <-done; err != nil {
		return 0, fmt.Errorf("raw consumer: %w", err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
