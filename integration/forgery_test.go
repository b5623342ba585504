package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// TestForgedInsertIsNeverChainedOrSigned reproduces issue 9 item 1: with
// the pipeline running, an anonymous client on the raw-store RPC inserts
// the next seqno with a bogus entry_hash. The ingester's next batch fails
// on the duplicate seqno; it must not then chain the event onto the forged
// row (and the segment holding the forged row must never be signed).
// Instead: an alert on securelog.alert.<stream>, the alert metric, and
// /healthz not ok.
func TestForgedInsertIsNeverChainedOrSigned(t *testing.T) {
	info := startLocal(t, node.UpConfig{
		HTTPListen: "127.0.0.1:0",
		Sealer:     pipeline.SealerConfig{MaxEntries: 100, MaxAge: 200 * time.Millisecond},
		Signer:     pipeline.SignerConfig{ScanInterval: 500 * time.Millisecond},
	})
	nc, err := info.Connect("test-attacker")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	alerts := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(wire.WildcardFor(wire.KindAlert), alerts)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, err := producer.New(nc, producer.Options{PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const stream = "victim"
	var last producer.Committed
	for i := range 2 {
		f, err := c.Publish(ctx, stream, producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: payloadOf(i)})
		if err != nil {
			t.Fatal(err)
		}
		if last, err = f.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The attack: the next seqno, in the victim stream, linking to its last
	// entry but with an entry hash that is not the hash of its contents.
	st := remoteStore(t, nc)
	head, _, err := st.GlobalHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	forged := wire.EntryRow{Seqno: head + 1, StreamID: stream, SessionID: "x", BootID: "x",
		Timestamp: "2026-04-10T00:00:00.000000Z", EventType: "forged", Severity: wire.Info, Producer: "attacker",
		PayloadEncoding: wire.EncoderName, Payload: []byte("forged"), PrevEntryHash: last.EntryHash,
		EntryHash: bytes.Repeat([]byte{0xab}, 32)}
	if bytes.Equal(chain.RowHash(forged), forged.EntryHash) {
		t.Fatal("forged hash is accidentally right")
	}
	if _, err := st.Insert(ctx, forged); err != nil {
		t.Fatalf("raw insert: %v", err)
	}
	f, err := c.Publish(ctx, stream, producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: []byte("after")})
	if err != nil {
		t.Fatal(err)
	}
	committed := make(chan producer.Committed, 1)
	go func() {
		if res, err := f.Wait(ctx); err == nil {
			committed <- res
		}
	}()
	var alert wire.AlertMsg
	for alert.Kind != "forged-entry" {
		select {
		case res := <-committed:
			ck, err := c.AwaitCheckpoint(ctx, res.Seqno)
			t.Fatalf("event committed at seqno %d chained onto the forged seqno %d (checkpoint: signed=%v err=%v)",
				res.Seqno, forged.Seqno, ck.Segment.Signed(), err)
		case m := <-alerts:
			if err := json.Unmarshal(m.Data, &alert); err != nil {
				t.Fatal(err)
			}
			t.Logf("alert on %s: %+v", m.Subject, alert)
			if m.Subject != wire.SubjectFor(wire.KindAlert, stream) {
				t.Fatalf("alert on %s, want the victim stream's subject", m.Subject)
			}
		case <-ctx.Done():
			t.Fatal("no forged-entry alert")
		}
	}
	// Nothing was chained onto the forged row.
	if h, _, err := st.GlobalHead(ctx); err != nil || h != forged.Seqno {
		t.Fatalf("global head %d (err %v), want the forged seqno %d", h, err, forged.Seqno)
	}
	// /healthz is not ok, and the metric counts the alert.
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		code, body := httpGet(t, "http://"+info.HTTPAddr+"/healthz")
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("/healthz %d %q", code, body)
		}
		return nil
	})
	_, metrics := httpGet(t, "http://"+info.HTTPAddr+"/metrics")
	if !strings.Contains(metrics, `securelog_pipeline_alerts_total{kind="forged-entry"} 1`) {
		t.Fatalf("alert metric missing:\n%s", grepLines(metrics, "alert"))
	}
	// The forged row is never signed: a segment holding it (the sealer may
	// close one) is refused by the signer.
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		id, ok, err := st.SegmentForSeqno(ctx, forged.Seqno)
		if err != nil || !ok {
			return nil // not sealed: nothing to sign
		}
		seg, _, err := st.SegmentGet(ctx, id)
		if err != nil {
			return err
		}
		if len(seg.Signature) != 0 {
			t.Fatalf("segment %d holding the forged seqno %d was signed", id, forged.Seqno)
		}
		return nil
	})
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
