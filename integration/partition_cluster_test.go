package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// TestPartitionsOnR3Cluster (issue 14): three partitions on a 3-node R3
// JetStream cluster, nine streams with concurrent producers. Partition p1's
// ingester runs as a subprocess and is killed with SIGKILL mid-load: the
// other partitions keep committing meanwhile, and the restarted ingester
// resumes with nothing lost or duplicated. A fourth partition is added
// during the load and a new stream assigned to it. Every event is committed
// exactly once in its own partition's store, remote reads are always
// answered by the owner's store, and every stream verifies.
func TestPartitionsOnR3Cluster(t *testing.T) {
	_, urls := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := partition.Open(ctx, js, partition.OpenConfig{Create: true, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	parts := []string{wire.DefaultPartition, "p1", "p2"}
	owner := map[string]string{}
	for i, p := range parts {
		if _, err := m.Add(ctx, p); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			s := fmt.Sprintf("s%d", 3*i+j)
			if err := m.Assign(ctx, s, p); err != nil {
				t.Fatal(err)
			}
			owner[s] = p
		}
	}
	logs := &logBuffer{}
	nodes := map[string]*partitionNode{
		wire.DefaultPartition: startPartition(t, urls, wire.DefaultPartition, logs),
		"p2":                  startPartition(t, urls, "p2", logs),
		"p1":                  startPartition(t, urls, "p1", logs, "sealer", "signer"),
	}
	p1 := nodes["p1"].info
	ingesterArgs := []string{"ingester", "--partition", "p1", "--store", p1.StoreSpec, "--nats", urls, "--replicas", "3",
		"--head-file", p1.HeadFile, "--kek", p1.KEKFile, "--max-batch", "200"}
	ing := startWorker(t, ingesterArgs...)

	pc, err := producer.New(nc, producer.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const perStream = 300
	var (
		mu      sync.Mutex
		futures []*producer.Future
	)
	// publish sends events [from, to) of every stream in streams, one
	// producer goroutine per stream.
	publish := func(streams []string, from, to int) {
		var wg sync.WaitGroup
		for _, s := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := from; i < to; i++ {
					f, err := pc.Publish(ctx, s, producer.Event{Type: "load", Severity: wire.Info, Producer: "it",
						Payload: []byte(fmt.Sprintf("%s-%06d", s, i)), MsgID: fmt.Sprintf("%s-%d", s, i)})
					if err != nil {
						t.Errorf("publish %s %d: %v", s, i, err)
						return
					}
					mu.Lock()
					futures = append(futures, f)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	streams := []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"}
	stores := map[string]store.Store{}
	storeOf := func(p string) store.Store {
		if stores[p] == nil {
			stores[p] = localStore(t, ctx, "", nc, p)
		}
		return stores[p]
	}
	count := func(stream string) int {
		n, _ := committedCount(storeOf(owner[stream]), stream)
		return n
	}
	publish(streams, 0, perStream/2)
	// Kill p1's ingester mid-load: its events wait in SECURELOG_IN_p1 while
	// the other partitions commit the rest of the load.
	checkFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		if n := count("s3"); n == 0 {
			return fmt.Errorf("p1 has committed nothing yet")
		}
		return nil
	})
	ing.kill()
	// A fourth partition joins during the load.
	if _, err := m.Add(ctx, "p3"); err != nil {
		t.Fatal(err)
	}
	if err := m.Assign(ctx, "s9", "p3"); err != nil {
		t.Fatal(err)
	}
	owner["s9"] = "p3"
	nodes["p3"] = startPartition(t, urls, "p3", logs)
	publish(append(streams, "s9"), perStream/2, perStream)
	publish([]string{"s9"}, 0, perStream/2)
	for _, s := range []string{"s0", "s1", "s2", "s6", "s7", "s8", "s9"} {
		checkFor(t, 90*time.Second, 20*time.Millisecond, func() error {
			if n := count(s); n != perStream {
				return fmt.Errorf("%s (partition %s): %d of %d committed while p1's ingester is down", s, owner[s], n, perStream)
			}
			return nil
		})
	}
	if n := count("s3"); n >= perStream {
		t.Fatalf("p1 committed %d events of s3 with its ingester killed", n)
	}
	ing = startWorker(t, ingesterArgs...)
	for _, f := range futures {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("event %s: %v\n%s", f.MsgID(), err, ing.output())
		}
	}
	// Exactly once, in the owner's store only.
	for s, p := range owner {
		for _, q := range append(parts, "p3") {
			rows := streamEntries(t, storeOf(q), s)
			if q != p {
				if len(rows) != 0 {
					t.Errorf("partition %s holds %d entries of %s (owned by %s)", q, len(rows), s, p)
				}
				continue
			}
			seen := map[string]int{}
			for _, r := range rows {
				seen[string(r.Payload)]++
			}
			for i := range perStream {
				if c := seen[fmt.Sprintf("%s-%06d", s, i)]; c != 1 {
					t.Errorf("%s event %d committed %d times", s, i, c)
				}
			}
		}
	}
	// Remote reads, routed by the map, are answered by the owner's store.
	for s := range owner {
		st := routedStore(t, ctx, nc, m, s)
		for i := range 200 {
			head, ok, err := st.Head(ctx, s)
			if err != nil || !ok || head == 0 {
				t.Fatalf("read %d of %s's head: %d %v %v", i, s, head, ok, err)
			}
		}
	}
	// Every stream is sealed, signed by its partition's signer and verifies.
	for s, p := range owner {
		st := routedStore(t, ctx, nc, m, s)
		checkFor(t, 90*time.Second, 50*time.Millisecond, func() error {
			segs, err := st.SegmentsList(ctx, s)
			if err != nil {
				return err
			}
			if len(segs) == 0 || !segs[len(segs)-1].Signed() {
				return fmt.Errorf("%s: %d segments, the last not signed yet", s, len(segs))
			}
			if head, _, _ := st.Head(ctx, s); segs[len(segs)-1].SeqEnd != head {
				return fmt.Errorf("%s: entries after the last segment", s)
			}
			return nil
		})
		if rep := auditStream(t, st, nodes[p].info.TrustFile, s, false); rep.Entries != perStream || rep.OpenEntries != 0 {
			t.Errorf("%s: audit covers %+v", s, rep)
		}
	}
	if l := logs.String(); strings.Contains(l, "not found") || strings.Contains(l, "wrong-partition") {
		t.Errorf("workers logged problems with another partition's segments:\n%s", l)
	}
}
