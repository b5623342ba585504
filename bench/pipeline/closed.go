package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// startNode runs the pipeline as `securelog up` does (internal/node) in a
// fresh data directory; stop ends it and removes the directory.
// noTlog switches the transparency tree off, to compare its cost.
var noTlog = flag.Bool("no-tlog", false, "run the node without the transparency tree (issue 11 cost comparison)")

// Ingester settings of the node (0 = the defaults of `securelog up`).
var (
	batchWait = flag.Duration("batch-wait", 0, "the ingester's batch wait (0 = default)")
	maxBatch  = flag.Int("max-batch", 0, "the ingester's largest batch (0 = default)")
)

func startNode(always bool) (node.Info, func(), error) { return startNodeWith(always, *noTlog, false) }

// startNodeWith is startNode with the tree off or on and, with witness, up's
// local witness running and cosigning (as `securelog up` runs it).
func startNodeWith(always, tlogOff, witness bool) (node.Info, func(), error) {
	dir, err := os.MkdirTemp("", "bench-pipeline")
	if err != nil {
		return node.Info{}, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		done <- node.Up(ctx, node.UpConfig{DataDir: filepath.Join(dir, "data"), SyncAlways: always, Logger: logger, Tlog: node.TlogConfig{Off: tlogOff}, LocalWitness: witness, StoreSpec: storeSpecFor(dir),
			Ingester: pipeline.IngesterConfig{BatchWait: *batchWait, MaxBatch: *maxBatch}},
			func(i node.Info) { infoc <- i })
	}()
	select {
	case info := <-infoc:
		return info, func() { cancel(); <-done; os.RemoveAll(dir) }, nil
	case err := <-done:
		cancel()
		os.RemoveAll(dir)
		return node.Info{}, nil, err
	}
}

type closedResult struct {
	rate, raw    float64
	commit, ckpt []time.Duration
	batches      uint64
	avgBatch     float64
	avgCommit    time.Duration
	cpu          time.Duration // process CPU time of the run (checkpoint samples included)
	loopCPU      time.Duration // process CPU time of the closed loop alone (from the first publish to the last commit)
	writes       string        // JetStream messages stored per stream during the loop
	catchUps     float64       // times the ingester read the stream directly, and how many messages
	catchUpRead  float64
}

func (r closedResult) print(title string, o options) {
	fmt.Printf("%s (%d events, %d producers, window %d)\n", title, o.events, o.producers, o.window)
	fmt.Printf("  committed            %9.0f entries/s   (raw async publish %0.f msg/s, ratio %.2f)\n", r.rate, r.raw, r.rate/r.raw)
	fmt.Printf("  time to committed    p50 %8.2f ms   p99 %8.2f ms\n", ms(pct(r.commit, 50)), ms(pct(r.commit, 99)))
	fmt.Printf("  time to checkpointed p50 %8.2f ms   p99 %8.2f ms   (%d samples)\n", ms(pct(r.ckpt, 50)), ms(pct(r.ckpt, 99)), len(r.ckpt))
	fmt.Printf("  process CPU          %9.1f µs/event\n", usPer(r.cpu, o.events))
	fmt.Printf("  ingester batches     %9d (mean %.0f events, mean commit %.2f ms)\n", r.batches, r.avgBatch, ms(r.avgCommit))
	fmt.Printf("  ingester catch-ups   %9.0f (messages read directly %.0f)\n", r.catchUps, r.catchUpRead)
	if r.writes != "" {
		fmt.Printf("  JetStream stored     %s\n", r.writes)
	}
}

// histStats returns the sample count and sum of a histogram of the
// pipeline's metrics.
func histStats(info node.Info, name string) (uint64, float64) {
	mfs, err := info.Metrics.Registry().Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	return 0, 0
}

// runClosed: o.events over o.producers clients, o.window in flight each,
// every event awaited to committed.
func runClosed(o options) (closedResult, error) {
	info, stop, err := startNodeWith(o.always, *noTlog || o.tlogOff, o.witness)
	if err != nil {
		return closedResult{}, err
	}
	defer stop()
	ctx := context.Background()
	writes0, err := streamWrites(info)
	if err != nil {
		return closedResult{}, err
	}
	var mu sync.Mutex
	var commits []time.Duration
	per := o.events / o.producers
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	errc := make(chan error, o.producers)
	for p := range o.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := info.Connect(fmt.Sprintf("bench-%d", p))
			if err != nil {
				errc <- err
				return
			}
			defer nc.Close()
			c, err := producer.New(nc, producer.Options{MaxPending: o.window})
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			type inflight struct {
				f  *producer.Future
				at time.Time
			}
			q := make(chan inflight, o.window)
			waitErr := make(chan error, 1)
			local := make([]time.Duration, 0, per)
			go func() {
				for it := range q {
					if _, err := it.f.Wait(ctx); err != nil {
						waitErr <- err
						for range q {
						}
						return
					}
					local = append(local, time.Since(it.at))
				}
				waitErr <- nil
			}()
			for i := range per {
				at := time.Now()
				f, err := c.Publish(ctx, "bench", producer.Event{Type: "bench", Severity: wire.Info, Producer: "bench", Payload: payload(o.size, i)})
				if err != nil {
					close(q)
					errc <- err
					return
				}
				q <- inflight{f, at}
			}
			close(q)
			if err := <-waitErr; err != nil {
				errc <- err
				return
			}
			mu.Lock()
			commits = append(commits, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed, loopCPU := time.Since(start), cpuTime()-cpu0
	select {
	case err := <-errc:
		return closedResult{}, err
	default:
	}
	res := closedResult{rate: float64(len(commits)) / elapsed.Seconds(), commit: commits, loopCPU: loopCPU}
	if n, sum := histStats(info, "securelog_pipeline_batch_size"); n > 0 {
		res.batches, res.avgBatch = n, sum/float64(n)
	}
	if n, sum := histStats(info, "securelog_pipeline_commit_duration_seconds"); n > 0 {
		res.avgCommit = time.Duration(sum / float64(n) * float64(time.Second))
	}
	res.catchUps = counter(info, "securelog_pipeline_ingester_catchups_total")
	res.catchUpRead = counter(info, "securelog_pipeline_ingester_catchup_messages_total")
	if writes1, err := streamWrites(info); err == nil {
		res.writes = writesLine(writes0, writes1, res.batches)
	}

	// Time to checkpointed: fresh events, each awaited through the levels.
	nc, err := info.Connect("bench-ckpt")
	if err != nil {
		return closedResult{}, err
	}
	defer nc.Close()
	c, err := producer.New(nc, producer.Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		return closedResult{}, err
	}
	defer c.Close()
	for i := range o.samples {
		at := time.Now()
		f, err := c.Publish(ctx, "bench", producer.Event{Type: "sample", Severity: wire.Info, Producer: "bench", Payload: payload(o.size, i)})
		if err != nil {
			return closedResult{}, err
		}
		r, err := f.Wait(ctx)
		if err != nil {
			return closedResult{}, err
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		_, err = c.AwaitCheckpoint(wctx, r.Seqno)
		wcancel()
		if err != nil {
			return closedResult{}, err
		}
		res.ckpt = append(res.ckpt, time.Since(at))
	}
	return res, nil
}

// histQuantile returns the upper bound of the bucket holding the q-th
// quantile of a histogram of the pipeline's metrics (seconds; q = 1: the
// bound of the highest non-empty bucket, +Inf shown as the last bound × 2).
func histQuantile(info node.Info, name string, q float64) float64 {
	mfs, err := info.Metrics.Registry().Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		n := h.GetSampleCount()
		if n == 0 {
			return 0
		}
		want := uint64(q*float64(n) + 0.999999)
		var bound float64
		for _, b := range h.GetBucket() {
			bound = b.GetUpperBound()
			if b.GetCumulativeCount() >= want {
				return bound
			}
		}
		return 2 * bound
	}
	return 0
}

// counter returns the value of a counter of the pipeline's metrics.
func counter(info node.Info, name string) float64 {
	mfs, err := info.Metrics.Registry().Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
