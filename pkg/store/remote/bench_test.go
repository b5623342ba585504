package remote_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

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

// v1Only answers this module's extension methods `unknown method`, as the
// reference server does, so the store reads with v1 methods.
type v1Only struct{ transport.Transport }

func (t v1Only) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if !slices.Contains(v1Methods, method) {
		return nil, &transport.StatusError{Prefix: "transport-nats", Status: 400, Body: `unknown method "` + method + `"`}
	}
	return t.Transport.Call(ctx, method, params)
}

// BenchmarkRPCRangeSegment reads a 5,000-entry segment's range (300-byte
// payloads, ~6.5 MB of JSON: what a signer's check reads) over NATS with
// the paged method and with v1 secure-log-range (whose reply only fits
// because the benchmark's server allows 64 MiB).
func BenchmarkRPCRangeSegment(b *testing.B) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	b.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc := rpctest.Connect(b, ns)
	back := memServer(b)
	ctx := context.Background()
	const rows = 5000
	for i := uint64(1); i <= rows; i++ {
		if _, err := back.Insert(ctx, benchRow(i)); err != nil {
			b.Fatal(err)
		}
	}
	tr := natsTransport(b, nc, rpctest.ServeNATS(b, nc, back, rpcserver.Config{}))
	for _, c := range []struct {
		name string
		tr   transport.Transport
	}{{"paged", tr}, {"v1", v1Only{tr}}} {
		b.Run(c.name, func(b *testing.B) {
			s := openRemote(b, c.tr)
			b.ReportAllocs()
			c0 := cpuTime()
			for b.Loop() {
				got, err := s.Range(ctx, "default", 1, rows)
				if err != nil || len(got) != rows {
					b.Fatalf("Range: %d rows, %v", len(got), err)
				}
			}
			b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N*rows), "CPU-µs/row")
		})
	}
}

// cpuTime is the process's user+system CPU time (client and server run in
// this process).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
