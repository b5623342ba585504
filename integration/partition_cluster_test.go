// This test runs three partitions on an in-process 3-node R3 JetStream
// cluster, inside the normal suite.

package integration

import (
	"context"
	"encoding/json"
	"errors"
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
// JetStream cluster, nine streams with concurrent producers.
//
//   - Partition p1's ingester runs as a subprocess and is killed with
//     SIGKILL mid-load: the other partitions commit all of their load
//     meanwhile, and the restarted ingester resumes with nothing lost or
//     duplicated.
//   - A fourth partition is added during the load and new streams are
//     assigned to it.
//   - Every event is committed exactly once, in its own partition's store;
//     remote reads routed by the map are always answered by the owner's
//     store; every stream verifies; no worker logs a problem with another
//     partition's segments.
//   - Bad input: a stream published before any assignment goes to the
//     default partition (and cannot be assigned elsewhere afterwards: the
//     error names its owner); a stream whose first events reach two
//     partitions at once is committed by one of them only, the other
//     dead-letters its event.
//
// The load is small (60 events per stream): the test is about routing and
// recovery, not throughput (bench/pipeline -partitions measures that), and
// must stay modest on a loaded 2-core CI machine. Every wait is on a
// condition, bounded only by the test's context.
func TestPartitionsOnR3Cluster(t *testing.T) {
	start := time.Now()
	// phase logs how long the test took to reach each step (where the
	// time goes on a loaded machine).
	phase := func(name string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), name) }
	_, urls := startCluster(t)
	phase("cluster up")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// waitFor polls fn until it succeeds or the test's time is up.
	waitFor := func(fn func() error) {
		t.Helper()
		dl, _ := ctx.Deadline()
		checkFor(t, time.Until(dl), 50*time.Millisecond, fn)
	}
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// streamExists asks for a JetStream stream with a timeout of its own:
	// a JetStream API request is answered by one server only, and one
	// made while the stream is being created can go unanswered for good
	// (a raw request sent then waited 90 s on a loaded machine). With the
	// test's 4-minute context, the CI run beside the suite waited the
	// whole 4 minutes in a single js.Stream call; each poll is bounded
	// (2 s) and retried, as production code does (pkg/jswait).
	streamExists := func(name string) error {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		_, err := js.Stream(cctx, name)
		return err
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
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("workers' warnings and errors:\n%s", logs.String())
		}
	})
	nodes := map[string]*partitionNode{
		wire.DefaultPartition: startPartition(t, urls, wire.DefaultPartition, logs),
		"p2":                  startPartition(t, urls, "p2", logs),
		"p1":                  startPartition(t, urls, "p1", logs, "sealer", "signer"),
	}
	p1 := nodes["p1"].info
	ingesterArgs := []string{"ingester", "--partition", "p1", "--store", p1.StoreSpec, "--nats", urls, "--replicas", "3",
		"--head-file", p1.HeadFile, "--kek", p1.KEKFile, "--max-batch", "200"}
	ing := startWorker(t, ingesterArgs...)
	// Events are published once every partition's ingester has created its
	// JetStream stream (before that, a publish fails: no stream listens).
	for _, p := range parts {
		waitFor(func() error {
			return streamExists(wire.MustPartition(p).InStream())
		})
	}
	phase("partitions up")

	pc, err := producer.New(nc, producer.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const perStream = 60
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
						Payload: fmt.Appendf(nil, "%s-%06d", s, i), MsgID: fmt.Sprintf("%s-%d", s, i)})
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
	// failed returns the error of a publish that failed after Publish
	// returned (asynchronous: for example no JetStream stream for the
	// subject), so a wait for commits stops at once instead of running
	// out of time.
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range futures {
			select {
			case <-f.Done():
				if _, err := f.Result(); err != nil {
					return fmt.Errorf("event %s: %w", f.MsgID(), err)
				}
			default:
			}
		}
		return nil
	}
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
	streams := []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"}
	publish(streams, 0, perStream/2)
	// Kill p1's ingester mid-load, once it has committed something: its
	// events wait in SECURELOG_IN_p1 while the other partitions commit.
	waitFor(func() error {
		if count("s3") == 0 {
			return errors.New("p1 has committed nothing yet")
		}
		return nil
	})
	phase("first half committed in p1")
	ing.kill()
	p1Before := map[string]int{}
	for _, s := range []string{"s3", "s4", "s5"} {
		p1Before[s] = count(s)
	}
	// The rest of the load, and meanwhile a fourth partition joins: new
	// streams are assigned to it and its workers start.
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); publish(streams, perStream/2, perStream) }()
	// The operator's order (docs/scaling.md): add the partition, start its
	// workers, then assign streams to it once its ingester has created its
	// JetStream stream (before that, publishing to it fails).
	if _, err := m.Add(ctx, "p3"); err != nil {
		t.Fatal(err)
	}
	nodes["p3"] = startPartition(t, urls, "p3", logs)
	waitFor(func() error {
		return streamExists(wire.MustPartition("p3").InStream())
	})
	for _, s := range []string{"s9", "s10"} {
		if err := m.Assign(ctx, s, "p3"); err != nil {
			t.Fatal(err)
		}
		owner[s] = "p3"
	}
	publish([]string{"s9", "s10"}, 0, perStream)
	<-loadDone
	// Every partition but p1 commits its whole load with p1's ingester down.
	for s, p := range owner {
		if p == "p1" {
			continue
		}
		waitFor(func() error {
			if err := failed(); err != nil {
				t.Fatal(err)
			}
			if n := count(s); n != perStream {
				return fmt.Errorf("%s (partition %s): %d of %d committed while p1's ingester is down", s, p, n, perStream)
			}
			return nil
		})
	}
	for s, n := range p1Before {
		if c := count(s); c != n {
			t.Fatalf("%s: %d entries with p1's ingester killed (had %d)", s, c, n)
		}
	}
	phase("every partition but p1 committed its load")
	// Debug logs: a failure to resume shows what the ingester did.
	ing = startWorker(t, append(ingesterArgs, "--verbose")...)
	for _, f := range futures {
		if _, err := f.Wait(ctx); err != nil {
			// What the producer knew: JetStream's acknowledgement, and
			// what p1's commit index says of it.
			actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
			seq, dup, aerr := f.Accepted(actx)
			lk, lerr := pc.LookupCommitIn(actx, wire.MustPartition("p1"), seq)
			acancel()
			t.Fatalf("event %s: %v\naccepted: js_seq=%d duplicate=%v err=%v; p1's commit index: %+v err=%v\n%s",
				f.MsgID(), err, seq, dup, aerr, lk, lerr, ing.output())
		}
	}

	phase("p1 resumed, every event committed")
	// Bad input: an unassigned stream goes to the default partition, which
	// claims it for good.
	f, err := pc.Publish(ctx, "u0", producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: []byte("u0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Wait(ctx); err != nil {
		t.Fatalf("unassigned stream: %v", err)
	}
	owner["u0"] = wire.DefaultPartition
	var conflict *wire.PartitionConflictError
	if err := m.Assign(ctx, "u0", "p2"); !errors.As(err, &conflict) || conflict.Owner != wire.DefaultPartition {
		t.Fatalf("assigning a stream the default partition committed: %v", err)
	}
	// Bad input: the first events of an unassigned stream reach the default
	// partition and p2 at once (a client that bypasses the map): one
	// partition claims it, the other dead-letters its event.
	dlq, err := js.OrderedConsumer(ctx, wire.DLQStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{wire.SubjectFor(wire.KindDLQ, "u1")}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, subj := range []string{wire.SubjectFor(wire.KindIn, "u1"), wire.MustPartition("p2").Subject(wire.KindIn, "u1")} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := mustEventJSON(t, subj)
			if _, err := js.Publish(ctx, subj, data); err != nil {
				t.Errorf("publish on %s: %v", subj, err)
			}
		}()
	}
	wg.Wait()
	dm, err := dlq.Next(jetstream.FetchMaxWait(time.Until(deadlineOf(ctx))))
	if err != nil {
		t.Fatalf("no dead letter for the losing partition's u1 event: %v", err)
	}
	var dl wire.DLQMsg
	if err := json.Unmarshal(dm.Data(), &dl); err != nil || !strings.Contains(dl.Reason, `stream "u1" belongs to partition`) {
		t.Fatalf("dead letter of u1: %v %+v", err, dl)
	}
	u1, _, err := m.Owner(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	owner["u1"] = u1
	waitFor(func() error {
		if n := count("u1"); n != 1 {
			return fmt.Errorf("u1: %d entries in its owner %s's store", n, u1)
		}
		return nil
	})

	phase("bad input")
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
			if strings.HasPrefix(s, "u") {
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
	// 1,000 remote reads, routed by the map, all answered by the owner's
	// store (another partition's answers "no entries"); the streams are
	// read concurrently.
	loadStreams := append(streams, "s9", "s10")
	var reads sync.WaitGroup
	for _, s := range loadStreams {
		st := routedStore(t, ctx, nc, m, s)
		reads.Add(1)
		go func() {
			defer reads.Done()
			for i := range (1000 + len(loadStreams) - 1) / len(loadStreams) {
				if head, ok, err := st.Head(ctx, s); err != nil || !ok || head == 0 {
					t.Errorf("read %d of %s's head: %d %v %v (answered by the wrong store)", i, s, head, ok, err)
					return
				}
			}
		}()
	}
	reads.Wait()
	if t.Failed() {
		t.FailNow()
	}
	phase("exactly once, 1,000 routed reads")
	// Every stream is sealed, signed by its partition's signer and verifies.
	for s, p := range owner {
		st := routedStore(t, ctx, nc, m, s)
		waitFor(func() error {
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
		want := uint64(perStream)
		if strings.HasPrefix(s, "u") {
			want = 1
		}
		if rep := auditStream(t, st, nodes[p].info.TrustFile, s, false); rep.Entries != want || rep.OpenEntries != 0 {
			t.Errorf("%s: audit covers %+v", s, rep)
		}
	}
	phase("every stream signed and verified")
	if l := logs.String(); strings.Contains(l, "not found") || strings.Contains(l, "wrong-partition") || strings.Contains(l, "level=ERROR") {
		t.Errorf("workers logged problems with another partition's segments:\n%s", l)
	}
}

// mustEventJSON is one valid event for the raw JetStream subject subj.
func mustEventJSON(t *testing.T, subj string) []byte {
	t.Helper()
	b, err := json.Marshal(wire.NewEventMsg("raw", wire.Info, "it", []byte(subj)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deadlineOf is ctx's deadline (a minute from now without one).
func deadlineOf(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(time.Minute)
}
