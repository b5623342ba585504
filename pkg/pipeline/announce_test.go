package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/securelog/securelog/pkg/wire"
)

// TestAnnouncementsCoalescedAcrossBatches: the JetStream writes that follow
// the ingester's commits (the appended announcement of each stream and the
// ingester's mark) were one of each per committed batch; with `sync
// always` every one is a broker fsync, which halved the pipeline's rate
// beside raw JetStream (issue 13). Many one-event batches in a row must
// share announcements and marks, and what is announced must still add up
// to every committed entry, with the newest mark written.
func TestAnnouncementsCoalescedAcrossBatches(t *testing.T) {
	nc, js := startJetStream(t)
	st := memStore(t)
	l := openLog(t, st)
	in, err := NewIngester(IngesterConfig{Log: l, Conn: nc, Logger: quiet(), MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-in.Started()

	const n = 1000
	for i := range n {
		m := nats.NewMsg(wire.SubjectFor(wire.KindIn, "s"))
		m.Data = fmt.Appendf(nil, `{"type":"t","severity":"info","producer":"p","payload":"e%d"}`, i)
		m.Header.Set(wire.MsgIDHeader, fmt.Sprint(i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged")
	}
	checkFor(t, 30*time.Second, func() error {
		if p := in.Position(); p != n {
			return fmt.Errorf("position %d, want %d", p, n)
		}
		return nil
	})
	head, _, err := st.GlobalHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hm dto.Metric
	if err := in.m.BatchSize.Write(&hm); err != nil {
		t.Fatal(err)
	}
	batches := hm.GetHistogram().GetSampleCount()
	if batches < n/2 {
		t.Fatalf("%d batches for %d one-event batches' worth of messages", batches, n)
	}

	// Everything committed is announced and marked, soon after the last commit.
	var count int
	var last uint64
	checkFor(t, 10*time.Second, func() error {
		count, last = 0, 0
		msgs, err := storedMsgs(ctx, js, wire.Partition{}.AppendedStream())
		if err != nil {
			return err
		}
		for _, b := range msgs {
			var a wire.AppendedMsg
			if err := json.Unmarshal(b, &a); err != nil {
				return err
			}
			count += a.Count
			last = max(last, a.LastSeqno)
		}
		if count != n || last != head {
			return fmt.Errorf("announced %d entries up to seqno %d, want %d up to %d", count, last, n, head)
		}
		e, err := in.marks.kv.Get(ctx, in.marks.key)
		if err != nil {
			return err
		}
		var mk ingestMark
		if err := json.Unmarshal(e.Value(), &mk); err != nil {
			return err
		}
		if mk.Position != n || mk.Seqno != head {
			return fmt.Errorf("mark %+v, want position %d seqno %d", mk, n, head)
		}
		return nil
	})

	writes := func(stream string) uint64 {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.LastSeq
	}
	appended, marks := writes(wire.Partition{}.AppendedStream()), writes("KV_"+MarkBucket)
	t.Logf("%d batches: %d appended announcements, %d marks", batches, appended, marks)
	if appended > batches/4 || marks > batches/4 {
		t.Fatalf("%d batches wrote %d appended announcements and %d marks to JetStream: want them shared across batches (at most %d each)",
			batches, appended, marks, batches/4)
	}
}

// storedMsgs returns the data of every message stored in stream.
func storedMsgs(ctx context.Context, js jetstream.JetStream, stream string) ([][]byte, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m.Data)
	}
	return out, nil
}

// TestNoticesLeadingAndTrailingEdge: the first notice after a quiet
// interval is written at once; notices within the interval wait for one
// trailing write that merges them; flush writes what is pending.
func TestNoticesLeadingAndTrailingEdge(t *testing.T) {
	now := time.Unix(1000, 0)
	var fire func()
	var armed []time.Duration
	var written []wire.AppendedMsg
	marks := 0
	n := newNotices(50*time.Millisecond, func(a *wire.AppendedMsg) { written = append(written, *a) }, func() { marks++ })
	n.now = func() time.Time { return now }
	n.afterFun = func(d time.Duration, f func()) *time.Timer {
		armed = append(armed, d)
		fire = f
		return time.NewTimer(time.Hour)
	}
	batch := func(stream string, first, last uint64) {
		a := &wire.AppendedMsg{Stream: stream, Count: int(last - first + 1), FirstSeqno: first, LastSeqno: last, LastEntryHash: wire.Hex{byte(last)}}
		n.add(map[string]*wire.AppendedMsg{stream: a}, []string{stream})
	}
	batch("a", 1, 3)
	if len(written) != 1 || marks != 1 {
		t.Fatalf("leading edge: %d announcements, %d marks written, want 1 and 1", len(written), marks)
	}
	now = now.Add(10 * time.Millisecond)
	batch("a", 4, 5)
	batch("b", 6, 6)
	batch("a", 7, 9)
	if len(written) != 1 || marks != 1 || fire == nil {
		t.Fatalf("within the interval: %d announcements, %d marks written, trailing armed %v", len(written), marks, fire != nil)
	}
	if len(armed) != 1 || armed[0] != 40*time.Millisecond {
		t.Fatalf("trailing write armed for %v, want once for the rest of the interval (40ms)", armed)
	}
	now = now.Add(40 * time.Millisecond)
	fire()
	want := []wire.AppendedMsg{
		{Stream: "a", Count: 3, FirstSeqno: 1, LastSeqno: 3, LastEntryHash: wire.Hex{3}},
		{Stream: "a", Count: 5, FirstSeqno: 4, LastSeqno: 9, LastEntryHash: wire.Hex{9}},
		{Stream: "b", Count: 1, FirstSeqno: 6, LastSeqno: 6, LastEntryHash: wire.Hex{6}},
	}
	if fmt.Sprint(written) != fmt.Sprint(want) || marks != 2 {
		t.Fatalf("after the trailing write: %v and %d marks, want %v and 2", written, marks, want)
	}
	now = now.Add(time.Millisecond)
	fire = nil
	n.mark() // a batch with nothing to announce (all rejected)
	if marks != 2 || fire == nil {
		t.Fatalf("mark within the interval: %d marks, trailing armed %v", marks, fire != nil)
	}
	n.flush()
	if marks != 3 || len(written) != 3 {
		t.Fatalf("flush: %d marks, %d announcements, want 3 and 3", marks, len(written))
	}
	n.flush()
	if marks != 3 || len(written) != 3 {
		t.Fatal("an empty flush wrote something")
	}
}
