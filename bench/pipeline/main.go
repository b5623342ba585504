// Command pipeline measures the JetStream pipeline in one process (the
// shape of `securelog up`): committed entries/s with producers awaiting the
// committed level, p50/p99 time to committed and to checkpointed, peak
// RSS, and the raw JetStream async publish rate against a server with the
// same settings, with the ratio of the two.
//
//	go run ./bench/pipeline [--events 50000] [--producers 4] [--sync always|default]
//	    [--cpuprofile cpu.out] [--memprofile allocs.out]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

func main() {
	events := flag.Int("events", 50000, "events to publish")
	producers := flag.Int("producers", 4, "concurrent producer clients")
	window := flag.Int("window", 2000, "events in flight per producer")
	size := flag.Int("size", 256, "payload bytes")
	syncMode := flag.String("sync", "always", "JetStream sync: always or default")
	checkpoints := flag.Int("checkpoint-samples", 20, "events whose time to checkpointed is measured")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the pipeline run")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the pipeline run")
	flag.Parse()
	if *syncMode != "always" && *syncMode != "default" {
		fmt.Fprintln(os.Stderr, "--sync: want always or default")
		os.Exit(2)
	}
	always := *syncMode == "always"
	raw, err := rawPublishRate(*events, *size, always)
	if err != nil {
		fail(err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	res, err := runPipeline(*events, *producers, *window, *size, *checkpoints, always)
	if err != nil {
		fail(err)
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			fail(err)
		}
		f.Close()
	}
	fmt.Printf("pipeline (sync %s, %d events x %d B, %d producers, window %d)\n", *syncMode, *events, *size, *producers, *window)
	fmt.Printf("  committed            %9.0f entries/s\n", res.rate)
	fmt.Printf("  time to committed    p50 %8.2f ms   p99 %8.2f ms\n", ms(pct(res.commit, 50)), ms(pct(res.commit, 99)))
	fmt.Printf("  time to checkpointed p50 %8.2f ms   p99 %8.2f ms   (%d samples)\n", ms(pct(res.ckpt, 50)), ms(pct(res.ckpt, 99)), len(res.ckpt))
	fmt.Printf("  ingester batches     %9d (mean %.0f events, mean commit %.2f ms)\n", res.batches, res.avgBatch, ms(res.avgCommit))
	fmt.Printf("  raw JetStream async  %9.0f msg/s (same server settings)\n", raw)
	fmt.Printf("  ratio committed/raw  %9.2f\n", res.rate/raw)
	fmt.Printf("  peak RSS             %9.1f MiB\n", peakRSS())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(i-1, len(s)-1))]
}

func peakRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}

func payload(size, i int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = 'a' + byte((i+j)%26)
	}
	return b
}

// rawPublishRate is JetStream alone: async publishes to a file stream on a
// fresh server with the same sync setting.
func rawPublishRate(n, size int, always bool) (float64, error) {
	dir, err := os.MkdirTemp("", "bench-raw")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ns, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: dir, SyncAlways: always})
	if err != nil {
		return 0, err
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	if err := pipeline.EnsureStreams(ctx, js, pipeline.StreamConfig{}); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := range n {
		m := nats.NewMsg("securelog.in.raw")
		m.Data = payload(size, i)
		m.Header.Set(wire.MsgIDHeader, fmt.Sprint(i))
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("raw publishes not acknowledged")
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

type result struct {
	rate         float64
	commit, ckpt []time.Duration
	batches      uint64
	avgBatch     float64
	avgCommit    time.Duration
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

func runPipeline(n, producers, window, size, samples int, always bool) (result, error) {
	dir, err := os.MkdirTemp("", "bench-pipeline")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		done <- node.Up(ctx, node.UpConfig{DataDir: filepath.Join(dir, "data"), SyncAlways: always, Logger: logger},
			func(i node.Info) { infoc <- i })
	}()
	var info node.Info
	select {
	case info = <-infoc:
	case err := <-done:
		return result{}, err
	}
	defer func() { cancel(); <-done }()

	var mu sync.Mutex
	var commits []time.Duration
	var lastSeqnos []uint64
	per := n / producers
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := info.Connect(fmt.Sprintf("bench-%d", p))
			if err != nil {
				errc <- err
				return
			}
			defer nc.Close()
			c, err := producer.New(nc, producer.Options{MaxPending: window})
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			type inflight struct {
				f  *producer.Future
				at time.Time
			}
			q := make(chan inflight, window)
			waitErr := make(chan error, 1)
			local := make([]time.Duration, 0, per)
			var seqno uint64
			go func() {
				for it := range q {
					r, err := it.f.Wait(ctx)
					if err != nil {
						waitErr <- err
						for range q {
						}
						return
					}
					local = append(local, time.Since(it.at))
					seqno = r.Seqno
				}
				waitErr <- nil
			}()
			for i := range per {
				at := time.Now()
				f, err := c.Publish(ctx, "bench", producer.Event{Type: "bench", Severity: wire.Info, Producer: "bench", Payload: payload(size, i)})
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
			lastSeqnos = append(lastSeqnos, seqno)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errc:
		return result{}, err
	default:
	}
	res := result{rate: float64(len(commits)) / elapsed.Seconds(), commit: commits}
	if n, sum := histStats(info, "securelog_pipeline_batch_size"); n > 0 {
		res.batches, res.avgBatch = n, sum/float64(n)
	}
	if n, sum := histStats(info, "securelog_pipeline_commit_duration_seconds"); n > 0 {
		res.avgCommit = time.Duration(sum / float64(n) * float64(time.Second))
	}

	// Time to checkpointed: fresh events, each awaited through the levels.
	nc, err := info.Connect("bench-ckpt")
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	c, err := producer.New(nc, producer.Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	for i := range samples {
		at := time.Now()
		f, err := c.Publish(ctx, "bench", producer.Event{Type: "sample", Severity: wire.Info, Producer: "bench", Payload: payload(size, i)})
		if err != nil {
			return result{}, err
		}
		r, err := f.Wait(ctx)
		if err != nil {
			return result{}, err
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		_, err = c.AwaitCheckpoint(wctx, r.Seqno)
		wcancel()
		if err != nil {
			return result{}, err
		}
		res.ckpt = append(res.ckpt, time.Since(at))
	}
	return res, nil
}
