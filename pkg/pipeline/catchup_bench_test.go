package pipeline

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// BenchmarkCatchUpRead: the catch-up reader's throughput and process CPU
// (client and in-process server) per message (readFrom with
// catchUpWindow gets in flight) over a stream of stored 256-byte events.
func BenchmarkCatchUpRead(b *testing.B) {
	ns, err := StartServer(ServerConfig{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if err := EnsureStreams(ctx, js, StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	const n = 20000
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = 'a'
	}
	for i := range n {
		m := nats.NewMsg(wire.SubjectFor(wire.KindIn, "s"))
		m.Data = fmt.Appendf(nil, `{"type":"t","severity":"info","producer":"p","payload":"%s"}`, payload)
		m.Header.Set(wire.MsgIDHeader, fmt.Sprint(i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	st := memory.New()
	_ = st.Init(ctx, "t")
	l := openLog(b, st)
	in, err := NewIngester(IngesterConfig{Log: l, Conn: nc, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	read := 0
	for b.Loop() {
		from := uint64(1)
		for from <= n {
			items, err := in.readFrom(ctx, from, catchUpWindow)
			if err != nil {
				b.Fatal(err)
			}
			read += len(items)
			from = items[len(items)-1].seq + 1
		}
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(read), "cpu-µs/msg")
}
