package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
	"github.com/securelog/securelog/pkg/witnessd"
)

// TestPublishCommitCheckpointAudit: events published through JetStream are
// committed (receipts), checkpointed (signed segments with inclusion
// proofs), and the stream passes a full audit through the store RPC over
// NATS and over HTTP.
func TestPublishCommitCheckpointAudit(t *testing.T) {
	var witnessTrust *checkpoint.Trust
	info := startLocal(t, node.UpConfig{
		HTTPListen: "127.0.0.1:0",
		Extra:      withWitness(t, &witnessTrust),
		Sealer:     pipeline.SealerConfig{MaxEntries: 100, MaxAge: 200 * time.Millisecond},
		Signer:     pipeline.SignerConfig{ScanInterval: time.Second},
	})
	nc, err := info.Connect("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := producer.New(nc, producer.Options{PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const n = 500
	streams := []string{"auth", "billing"}
	futs := make([]*producer.Future, 0, n)
	for i := range n {
		f, err := c.Publish(ctx, streams[i%2], producer.Event{Type: "test.event", Severity: wire.Info, Producer: "it", Payload: payloadOf(i)})
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	seen := map[uint64]bool{}
	var last producer.Committed
	for i, f := range futs {
		res, err := f.Wait(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if res.Seqno == 0 || len(res.EntryHash) != 32 || res.Stream != streams[i%2] {
			t.Fatalf("event %d: bad receipt %+v", i, res)
		}
		if seen[res.Seqno] {
			t.Fatalf("seqno %d committed twice", res.Seqno)
		}
		seen[res.Seqno] = true
		last = res
	}
	// Request/reply append is committed on return.
	app, err := c.Append(ctx, "auth", producer.Event{Type: "rr", Severity: wire.Notice, Producer: "it", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if app.Seqno <= last.Seqno-uint64(n) || seen[app.Seqno] {
		t.Fatalf("append seqno %d overlaps published ones", app.Seqno)
	}
	// A bad event is rejected to the DLQ and its future fails.
	f, err := c.Publish(ctx, "auth", producer.Event{Type: "bad", Severity: wire.Severity(42), Producer: "it"})
	if err == nil {
		t.Fatalf("publishing an invalid severity succeeded: %v", f.MsgID())
	}
	ck, err := c.AwaitCheckpoint(ctx, app.Seqno)
	if err != nil {
		t.Fatal(err)
	}
	if !ck.Segment.Signed() || ck.Proof.Seqno != app.Seqno {
		t.Fatalf("checkpoint: %+v", ck)
	}
	if err := securelog.VerifyInclusionProof(ck.Proof, ck.Segment.MerkleRoot); err != nil {
		t.Fatal(err)
	}
	// The checkpoint event may be missed if it was published before the
	// wait subscribed; when seen, its witness receipt must be cosigned.
	for _, r := range ck.Receipts {
		if err := witnessd.VerifyCosignature(witnessTrust, r); err != nil {
			t.Fatalf("witness receipt: %v", err)
		}
	}
	if got := witnessed(t, info, "accepted"); got == 0 {
		t.Fatal("no checkpoint was accepted by the witness")
	}
	if got := witnessed(t, info, "refused") + witnessed(t, info, "error"); got != 0 {
		t.Fatalf("%v witness submissions refused or failed", got)
	}
	ck2, err := c.AwaitCheckpoint(ctx, last.Seqno)
	if err != nil {
		t.Fatal(err)
	}
	if !ck2.Segment.Signed() {
		t.Fatal("last event's segment not signed")
	}

	for _, tc := range []struct {
		name string
		mk   func() (transport.Transport, error)
	}{
		{"nats", func() (transport.Transport, error) {
			return transport.NewNATS(transport.Config{NATSConn: nc})
		}},
		{"http", func() (transport.Transport, error) {
			token, err := info.Token(rpcserver.RoleReader)
			if err != nil {
				return nil, err
			}
			return transport.NewHTTP(transport.Config{URL: "http://" + info.HTTPAddr + "/", Token: token})
		}},
	} {
		t.Run("audit-over-"+tc.name, func(t *testing.T) {
			tr, err := tc.mk()
			if err != nil {
				t.Fatal(err)
			}
			st := remote.New(tr)
			if err := st.Init(ctx, "audit"); err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			total := uint64(0)
			for _, s := range streams {
				// The auth stream's last segment (holding app) is signed; the
				// billing stream may still be sealing its tail.
				rep := auditStream(t, st, info.TrustFile, s, s != "auth")
				total += rep.Entries
				if rep.Signed == 0 {
					t.Fatalf("%s: no signed segments", s)
				}
			}
			if total != n+1 {
				t.Fatalf("audited %d entries, want %d", total, n+1)
			}
			// The signer recorded the witness's cosignatures in the log's
			// witness log, which is what `securelog export` carries.
			rows, err := st.WitnessList(ctx, "auth")
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				t.Fatal("no witness cosignatures recorded in the log's store")
			}
			for _, row := range rows {
				if err := witnessd.VerifyCosignature(witnessTrust, witness.RowReceipt(row)); err != nil {
					t.Fatalf("recorded cosignature of segment %d: %v", row.SegmentID, err)
				}
			}
		})
	}
}

// TestRejectedEventGoesToDLQ: an event that fails validation in the
// ingester (published raw) fails its future with the reason.
func TestRejectedEventGoesToDLQ(t *testing.T) {
	info := startLocal(t, node.UpConfig{})
	nc, err := info.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	dlq, err := nc.SubscribeSync(wire.WildcardFor(wire.KindDLQ))
	if err != nil {
		t.Fatal(err)
	}
	receipts, err := nc.SubscribeSync(wire.SubjectFor(wire.KindCommitted, "default"))
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{`not json`, `{"type":"x","severity":"loud","producer":"p"}`, `{"type":"ok","severity":"info","producer":"p","payload":"fine"}`} {
		m := natsMsg(wire.SubjectFor(wire.KindIn, "default"), body, fmt.Sprintf("id-%d", i))
		if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := dlq.NextMsg(10 * time.Second); err != nil {
			t.Fatalf("dead letter: %v", err)
		}
	}
	var committed, rejected int
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		m, err := receipts.NextMsg(time.Second)
		if err != nil {
			return err
		}
		var r wire.CommitReceipt
		if err := jsonUnmarshal(m.Data, &r); err != nil {
			return err
		}
		for _, it := range r.Items {
			if it.Error != "" {
				rejected++
			} else {
				committed++
			}
		}
		if committed+rejected < 3 {
			return fmt.Errorf("%d receipts so far", committed+rejected)
		}
		return nil
	})
	if committed != 1 || rejected != 2 {
		t.Fatalf("committed %d rejected %d, want 1 and 2", committed, rejected)
	}
}

// witnessed reads the signer's witness submission counter for outcome.
func witnessed(t *testing.T, info node.Info, outcome string) float64 {
	t.Helper()
	mfs, err := info.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "securelog_pipeline_witness_submissions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
