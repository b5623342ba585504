package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// TestSealedStreamsThroughPipeline: protected and highly-restricted streams
// interleaved with a public one, with the sealer closing segments of every
// stream at its own pace, end up sealed under the keys of the segments that
// hold them (DECISIONS 5): every payload decrypts with the KEK after its
// segment is closed, and the streams audit.
func TestSealedStreamsThroughPipeline(t *testing.T) {
	info := startLocal(t, node.UpConfig{
		HTTPListen: "127.0.0.1:0",
		Sealer:     pipeline.SealerConfig{MaxEntries: 7, MaxAge: 50 * time.Millisecond},
		Signer:     pipeline.SignerConfig{ScanInterval: time.Second},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kek, err := seal.LoadKEK(info.KEKFile)
	if err != nil {
		t.Fatal(err)
	}
	token, err := info.Token(rpcserver.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transport.NewHTTP(transport.Config{URL: "http://" + info.HTTPAddr + "/", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	st := remote.New(tr)
	if err := st.Init(ctx, "sealed-test"); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admin := securelog.New(st, securelog.Options{KEK: kek})
	if err := admin.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	for name, tier := range map[string]string{"pay": "protected", "hr": "highly-restricted"} {
		if err := admin.CreateStream(ctx, name, tier, nil); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := info.Connect("sealed-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := producer.New(nc, producer.Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	streams := []string{"pay", "pub", "hr", "pay", "pub"}
	want := map[uint64]string{}
	var lastSeqno uint64
	for i := 0; i < 120; i++ {
		s := streams[i%len(streams)]
		body := fmt.Sprintf("%s-secret-%d", s, i)
		res, err := c.Append(ctx, s, producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		want[res.Seqno] = body
		lastSeqno = res.Seqno
	}
	// Wait until everything is in a signed segment.
	if _, err := c.AwaitCheckpoint(ctx, lastSeqno); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for seqno := range want {
			if _, ok, err := st.SegmentForSeqno(ctx, seqno); err != nil || !ok {
				return fmt.Errorf("seqno %d not in a segment yet (%v)", seqno, err)
			}
		}
		return nil
	})
	sealed := 0
	for seqno, body := range want {
		row, err := admin.Read(ctx, seqno)
		if err != nil {
			t.Fatal(err)
		}
		if row.StreamID != "pub" {
			if row.PayloadEncoding != wire.AEADEncoding || string(row.Payload) == body {
				t.Fatalf("seqno %d of %s is not sealed: %+v", seqno, row.StreamID, row)
			}
			sealed++
		}
		pt, err := admin.OpenPayload(ctx, seqno)
		if err != nil {
			t.Fatalf("seqno %d (%s): %v", seqno, row.StreamID, err)
		}
		if string(pt) != body {
			t.Fatalf("seqno %d: got %q want %q", seqno, pt, body)
		}
	}
	if sealed == 0 {
		t.Fatal("no sealed entries")
	}
	for _, s := range []string{"pay", "hr", "pub"} {
		if rep := auditStream(t, st, info.TrustFile, s, true); rep.Entries == 0 {
			t.Fatalf("%s: nothing audited", s)
		}
	}
}
