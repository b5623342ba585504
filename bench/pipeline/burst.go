package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/wire"
)

type burstResult struct {
	n              int
	published      time.Duration
	total, maxGap  time.Duration
	gapAfter       int
	catchUps, read float64
}

func (r burstResult) print(title string) {
	fmt.Printf("%s (%d events with core NATS publish)\n", title, r.n)
	fmt.Printf("  published in %.2f s; all committed after %.2f s (%.0f events/s); longest gap between commits %.0f ms (after %d events)\n",
		r.published.Seconds(), r.total.Seconds(), float64(r.n)/r.total.Seconds(), ms(r.maxGap), r.gapAfter)
	fmt.Printf("  ingester catch-ups %.0f, messages read directly from the stream %.0f\n", r.catchUps, r.read)
}

// runBurst publishes n events at once with core NATS, as `nats pub
// --count n` does, and times the commit receipts.
func runBurst(o options, n int) (burstResult, error) {
	info, stop, err := startNode(o.always)
	if err != nil {
		return burstResult{}, err
	}
	defer stop()
	nc, err := info.Connect("bench-burst-watch")
	if err != nil {
		return burstResult{}, err
	}
	defer nc.Close()
	const stream = "burst"
	var mu sync.Mutex
	res := burstResult{n: n}
	committed := 0
	var last time.Time
	done := make(chan struct{})
	sub, err := nc.Subscribe(wire.SubjectFor(wire.KindCommitted, stream), func(m *nats.Msg) {
		var r wire.CommitReceipt
		if json.Unmarshal(m.Data, &r) != nil {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if g := now.Sub(last); g > res.maxGap {
			res.maxGap, res.gapAfter = g, committed
		}
		last = now
		committed += len(r.Items)
		if committed == n {
			close(done)
		}
	})
	if err != nil {
		return burstResult{}, err
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	pub, err := info.Connect("bench-burst")
	if err != nil {
		return burstResult{}, err
	}
	defer pub.Close()
	subject := wire.SubjectFor(wire.KindIn, stream)
	body := fmt.Sprintf(`{"type":"burst","severity":"info","producer":"bench","payload":%q}`, payload(o.size, 0))
	start := time.Now()
	mu.Lock()
	last = start
	mu.Unlock()
	for range n {
		if err := pub.Publish(subject, []byte(body)); err != nil {
			return burstResult{}, err
		}
	}
	if err := pub.Flush(); err != nil {
		return burstResult{}, err
	}
	res.published = time.Since(start)
	select {
	case <-done:
	case <-time.After(30 * time.Minute):
		return burstResult{}, fmt.Errorf("burst: only %d of %d committed after 30 minutes", committed, n)
	}
	mu.Lock()
	res.total = last.Sub(start)
	mu.Unlock()
	res.catchUps = counter(info, "securelog_pipeline_ingester_catchups_total")
	res.read = counter(info, "securelog_pipeline_ingester_catchup_messages_total")
	return res, nil
}
