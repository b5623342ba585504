package remote_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/wire"
)

// TestRangeLargerThanMaxPayload: a range whose rows do not fit one NATS
// message (a signer checking a 20,000-entry segment over the RPC) is read
// in smaller windows instead of failing with "maximum payload exceeded".
func TestRangeLargerThanMaxPayload(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	backing := memServer(t)
	subj := rpctest.ServeNATS(t, nc, backing, rpcserver.Config{})
	s := remote.New(natsTransport(t, nc, subj))
	ctx := t.Context()
	if err := s.Init(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	const n = 200 // ~4 KiB of JSON each: ~800 KiB in all
	payload := bytes.Repeat([]byte{200}, 1000)
	for i := uint64(1); i <= n; i++ {
		row := wire.EntryRow{Seqno: i, StreamID: "default", SessionID: "s", BootID: "b", Timestamp: "t", EventType: "e",
			Producer: "p", PayloadEncoding: "cbor", Payload: payload, PrevEntryHash: wire.ZeroHash, EntryHash: wire.ZeroHash}
		if _, err := backing.Insert(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // the second call starts from the learned window
		rows, err := s.Range(ctx, "default", 1, n)
		if err != nil {
			t.Fatalf("Range: %v", err)
		}
		if len(rows) != n || rows[0].Seqno != 1 || rows[n-1].Seqno != n {
			t.Fatalf("Range returned %d rows", len(rows))
		}
		for i, r := range rows {
			if r.Seqno != uint64(i+1) || !bytes.Equal(r.Payload, payload) {
				t.Fatalf("row %d is seqno %d", i, r.Seqno)
			}
		}
	}
	if rows, err := s.Range(ctx, "default", 5, 4); err != nil || len(rows) != 0 {
		t.Fatalf("empty range: %v %v", rows, err)
	}
}
