package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
)

// streamWrites is how many messages each JetStream stream of a node has
// stored so far (its last sequence: deleted and acknowledged messages
// count), by stream name. With sync_interval always every one of them
// is an fsync of the broker.
func streamWrites(info node.Info) (map[string]uint64, error) {
	nc, err := info.Connect("bench-streams")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]uint64{}
	l := js.ListStreams(ctx)
	for si := range l.Info() {
		out[si.Config.Name] = si.State.LastSeq
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	return out, nil
}

// writesLine formats the messages stored per stream between before and
// after, per ingester batch, the input stream first.
func writesLine(before, after map[string]uint64, batches uint64) string {
	var names []string
	for n := range after {
		if after[n] > before[n] {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		if ia, ib := strings.HasPrefix(a, "SECURELOG_IN"), strings.HasPrefix(b, "SECURELOG_IN"); ia != ib {
			if ia {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	var other uint64
	for _, n := range names {
		d := after[n] - before[n]
		fmt.Fprintf(&b, " %s %d", n, d)
		if !strings.HasPrefix(n, "SECURELOG_IN") {
			other += d
		}
	}
	if batches > 0 {
		fmt.Fprintf(&b, "; besides the events %.2f per ingester batch", float64(other)/float64(batches))
	}
	return strings.TrimSpace(b.String())
}
