package pipeline

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// readerFor returns an ingester over a fresh store whose filter takes
// only stream "a"'s events.
func readerFor(t *testing.T, js jetstream.JetStream) *Ingester {
	t.Helper()
	st := memory.New()
	if err := st.Init(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	in, err := NewIngester(IngesterConfig{Log: openLog(t, st), Conn: js.Conn(), Logger: quiet(),
		FilterSubject: wire.SubjectFor(wire.KindIn, "a")})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// seqsAndIDs lists what a catch-up read took: stream sequence, msg id,
// subject-derived stream and stored time present.
func seqsAndIDs(items []inItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprintf("%d/%s/%s/%v", it.seq, it.msgID, it.stream, it.stored > 0))
	}
	return out
}

// The batched direct get (readDirect) takes the filter's first window
// messages at or after a sequence, in order, with their msg ids, streams
// and stored times, and nothing once the stream holds no more; the
// message gets (readMsgGets, one per sequence) take a start of the same.
func TestCatchUpDirectReadMatchesMessageGets(t *testing.T) {
	nc := startNATS(t)
	ensureStreams(t, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Streams a and b interleaved: sequences 1..40, a's are the odd ones
	// and every third after 30.
	var as []inItem // a's messages: what a read of the filter may take
	for i := 0; i < 40; i++ {
		stream := "a"
		if i%2 == 1 && i < 30 || i >= 30 && i%3 != 0 {
			stream = "b"
		}
		publish(t, js, stream, i, i+1)
		if stream == "a" {
			as = append(as, inItem{seq: uint64(i + 1), msgID: fmt.Sprint(i), stream: "a", stored: 1})
		}
	}
	in := readerFor(t, js)
	ctx := context.Background()
	for _, from := range []uint64{1, 2, 3, 17, 30, 31, 39, 40, 41, 100} {
		for _, window := range []int{1, 3, 7, catchUpWindow} {
			direct, err := in.readDirect(ctx, from, window)
			if err != nil {
				t.Fatalf("readDirect(%d, %d): %v", from, window, err)
			}
			gets, err := in.readMsgGets(ctx, from, window)
			if err != nil {
				t.Fatalf("readMsgGets(%d, %d): %v", from, window, err)
			}
			// The first window of a's messages at or after from; the
			// message gets (one per sequence) may end earlier.
			want := seqsAndIDs(slices.DeleteFunc(slices.Clone(as), func(it inItem) bool { return it.seq < from }))
			want = want[:min(window, len(want))]
			if d := seqsAndIDs(direct); !slices.Equal(d, want) {
				t.Errorf("from %d window %d: direct get took %v, want %v", from, window, d, want)
			}
			if g := seqsAndIDs(gets); !slices.Equal(g, want[:len(g)]) || len(want) > 0 && len(g) == 0 {
				t.Errorf("from %d window %d: message gets took %v, want a start of %v", from, window, g, want)
			}
			for _, it := range direct {
				if it.err != nil || it.seq < from {
					t.Errorf("from %d: item %d: %v", from, it.seq, it.err)
				}
			}
		}
	}
	if in.noDirect.Load() {
		t.Fatal("the reader gave up on direct gets")
	}
}

// A SECURELOG_IN created before streams allowed direct gets (existing
// streams are left as their operator configured them) has no direct-get
// responders: the catch-up reader falls back to message gets and keeps
// reading.
func TestCatchUpFallsBackWithoutDirectGets(t *testing.T) {
	nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: wire.InStream, Subjects: []string{wire.InSubjects},
		Storage: jetstream.FileStorage, Duplicates: DefaultDuplicates}); err != nil {
		t.Fatal(err)
	}
	ensureStreams(t, nc)
	publish(t, js, "a", 0, 5)
	in := readerFor(t, js)
	items, err := in.readFrom(ctx, 1, catchUpWindow)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsAndIDs(items); !slices.Equal(got, []string{"1/0/a/true", "2/1/a/true", "3/2/a/true", "4/3/a/true", "5/4/a/true"}) {
		t.Fatalf("read %v", got)
	}
	if !in.noDirect.Load() {
		t.Fatal("the reader still tries direct gets on a stream without them")
	}
	if items, err = in.readFrom(ctx, 3, 2); err != nil || len(items) != 2 || items[0].seq != 3 {
		t.Fatalf("second read: %v %v", seqsAndIDs(items), err)
	}
}
