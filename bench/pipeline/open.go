package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

type openResult struct {
	offered, achieved float64
	lat               []time.Duration
	send              []time.Duration // from the scheduled time to Publish returning
	cpuPerEvent       float64         // process CPU µs per offered event
	stages            string          // the ingester's per-batch breakdown
}

func (r openResult) print(title string) {
	fmt.Printf("%s (offered %.0f events/s, committed %.0f events/s)\n", title, r.offered, r.achieved)
	fmt.Printf("  time to committed    p50 %8.2f ms   p90 %8.2f ms   p99 %8.2f ms   max %8.2f ms   (%d events)\n",
		ms(pct(r.lat, 50)), ms(pct(r.lat, 90)), ms(pct(r.lat, 99)), ms(pct(r.lat, 100)), len(r.lat))
	fmt.Printf("  scheduled to sent    p50 %8.2f ms   p99 %8.2f ms   max %8.2f ms\n", ms(pct(r.send, 50)), ms(pct(r.send, 99)), ms(pct(r.send, 100)))
	if r.stages != "" {
		fmt.Print(r.stages)
	}
	fmt.Printf("  process CPU          %9.1f µs/event, %.0f %% of %d cores at the offered rate   (load average %s)\n",
		r.cpuPerEvent, r.cpuPerEvent*r.offered/1e4/float64(runtime.NumCPU()), runtime.NumCPU(), loadAvg())
}

// stageLines breaks the time to committed down per ingester batch, from
// the pipeline's histograms (bucket bounds, so each figure is "at most").
func stageLines(info node.Info) string {
	var b strings.Builder
	for _, st := range []struct{ name, metric string }{
		{"JetStream to ingester", "securelog_pipeline_delivery_lag_seconds"},
		{"batch wait + queue", "securelog_pipeline_batch_wait_seconds"},
		{"store commit", "securelog_pipeline_commit_duration_seconds"},
		{"commit to receipt", "securelog_pipeline_receipt_delay_seconds"},
	} {
		n, _ := histStats(info, st.metric)
		fmt.Fprintf(&b, "  %-20s p50 ≤%7.2f ms   p99 ≤%7.2f ms   max ≤%8.2f ms   (%d batches)\n", st.name,
			1000*histQuantile(info, st.metric, 0.5), 1000*histQuantile(info, st.metric, 0.99), 1000*histQuantile(info, st.metric, 1), n)
	}
	fmt.Fprintf(&b, "  ingester catch-ups %.0f (messages read directly %.0f)\n",
		counter(info, "securelog_pipeline_ingester_catchups_total"), counter(info, "securelog_pipeline_ingester_catchup_messages_total"))
	return b.String()
}

// runOpen offers rate events/s for d, spread evenly over o.producers
// clients. Each event's latency runs from its scheduled send time (not the
// time the client got to it) to its commit receipt, so a stall counts
// against every event it delays. The first tenth of d is warm-up.
func runOpen(o options, rate float64, d time.Duration) (openResult, error) {
	info, stop, err := startNode(o.always)
	if err != nil {
		return openResult{}, err
	}
	defer stop()
	ctx := context.Background()
	c0 := cpuTime()
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	warm := d / 10
	var mu sync.Mutex
	var lats, sends []time.Duration
	var last time.Time
	var wg sync.WaitGroup
	errc := make(chan error, o.producers)
	start := time.Now().Add(50 * time.Millisecond)
	for p := range o.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := info.Connect(fmt.Sprintf("bench-open-%d", p))
			if err != nil {
				errc <- err
				return
			}
			defer nc.Close()
			c, err := producer.New(nc, producer.Options{})
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			type inflight struct {
				f  *producer.Future
				at time.Time
			}
			q := make(chan inflight, 1<<16)
			waitErr := make(chan error, 1)
			var local, sent []time.Duration
			var done time.Time
			go func() {
				for it := range q {
					<-it.f.Done()
					if _, err := it.f.Result(); err != nil {
						waitErr <- err
						for range q {
						}
						return
					}
					done = time.Now()
					if it.at.Sub(start) >= warm {
						local = append(local, done.Sub(it.at))
					}
				}
				waitErr <- nil
			}()
			for k := p; k < total; k += o.producers {
				at := start.Add(time.Duration(k) * interval)
				if w := time.Until(at); w > 0 {
					time.Sleep(w)
				}
				f, err := c.Publish(ctx, "bench", producer.Event{Type: "bench", Severity: wire.Info, Producer: "bench", Payload: payload(o.size, k)})
				if err != nil {
					close(q)
					errc <- err
					return
				}
				if at.Sub(start) >= warm {
					sent = append(sent, time.Since(at))
				}
				q <- inflight{f, at}
			}
			close(q)
			if err := <-waitErr; err != nil {
				errc <- err
				return
			}
			mu.Lock()
			lats = append(lats, local...)
			sends = append(sends, sent...)
			if done.After(last) {
				last = done
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return openResult{}, err
	default:
	}
	return openResult{offered: rate, achieved: float64(total) / last.Sub(start).Seconds(), lat: lats, send: sends,
		cpuPerEvent: usPer(cpuTime()-c0, total), stages: stageLines(info)}, nil
}
