package remote_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// benchTransports returns one remote-store transport per provider, each to
// its own server over a fresh memory store.
func benchTransports(b *testing.B) map[string]transport.Transport {
	b.Helper()
	ns := rpctest.StartNATS(b)
	nc := rpctest.Connect(b, ns)
	return map[string]transport.Transport{
		"http": httpTransport(b, rpctest.ServeHTTP(b, memServer(b), rpcserver.Config{})),
		"nats": natsTransport(b, nc, rpctest.ServeNATS(b, nc, memServer(b), rpcserver.Config{})),
	}
}

// benchRow is a 300-byte-payload entry row.
func benchRow(seqno uint64) wire.EntryRow {
	h := sha256.Sum256([]byte{byte(seqno), byte(seqno >> 8), byte(seqno >> 16)})
	return wire.EntryRow{
		Seqno: seqno, StreamID: "default", SessionID: "sess", BootID: "boot",
		Timestamp: "2026-04-10T00:00:01+00:00", EventType: "bench.event", Severity: wire.Info,
		Producer: "bench", PayloadEncoding: wire.EncoderName, Payload: make([]byte, 300),
		PrevEntryHash: make([]byte, 32), EntryHash: h[:],
	}
}

func openRemote(b *testing.B, tr transport.Transport) *remote.Store {
	b.Helper()
	s := remote.New(tr)
	if err := s.Init(context.Background(), "bench"); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkRPCGet measures one secure-log-get round trip (remote store →
// transport → rpcserver → memory store and back); ops/s = 1e9 / ns/op.
func BenchmarkRPCGet(b *testing.B) {
	for _, kind := range []string{"http", "nats"} {
		b.Run(kind, func(b *testing.B) {
			s := openRemote(b, benchTransports(b)[kind])
			ctx := context.Background()
			const rows = 1000
			for i := uint64(1); i <= rows; i++ {
				if _, err := s.Insert(ctx, benchRow(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			var i uint64
			for b.Loop() {
				i++
				if _, ok, err := s.Get(ctx, i%rows+1); err != nil || !ok {
					b.Fatalf("Get: %v %v", ok, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkRPCInsert measures one secure-log-insert round trip.
func BenchmarkRPCInsert(b *testing.B) {
	for _, kind := range []string{"http", "nats"} {
		b.Run(kind, func(b *testing.B) {
			s := openRemote(b, benchTransports(b)[kind])
			ctx := context.Background()
			b.ReportAllocs()
			var seq uint64
			for b.Loop() {
				seq++
				if _, err := s.Insert(ctx, benchRow(seq)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
