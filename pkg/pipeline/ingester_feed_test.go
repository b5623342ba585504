package pipeline

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// TestReadFrom: the catch-up reader returns the filter's messages from a
// stream sequence on, in order, each once, with subject, data and message
// id, and nothing past the last stored one.
func TestReadFrom(t *testing.T) {
	nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := EnsureStreams(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	// Sequences 1..10 alternate between streams a and b.
	for i := range 10 {
		publish(t, js, []string{"a", "b"}[i%2], i, i+1)
	}
	mk := func(filter string) *Ingester {
		in, err := NewIngester(IngesterConfig{Log: openLog(t, memory.New()), Conn: nc, Logger: quiet(), FilterSubject: filter})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	all := mk("")
	items, err := all.readFrom(ctx, 4, 16)
	if err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, items, 4, 10)
	if it := items[0]; it.err != nil || it.stream != "b" || it.msgID != "3" || string(it.event.Payload) != "e3" || it.subject != "securelog.in.b" {
		t.Fatalf("item 4: %+v", it)
	}
	if items, err := all.readFrom(ctx, 11, 4); err != nil || len(items) != 0 {
		t.Fatalf("past the end: %d items, err %v", len(items), err)
	}
	onlyA := mk(wire.SubjectFor(wire.KindIn, "a"))
	items, err = onlyA.readFrom(ctx, 2, 8)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(items); len(got) != 4 || got[0] != 3 || got[1] != 5 || got[2] != 7 || got[3] != 9 {
		t.Fatalf("filtered read: sequences %v, want [3 5 7 9]", got)
	}
}
