package witnessd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// submitter is what the HTTP and NATS clients share.
type submitter interface {
	Submit(ctx context.Context, sub witness.Submission) (witness.Receipt, error)
}

// exerciseClient runs the same scenario through a client: accept,
// idempotent, stale, equivocation (alerted), bad signature, unknown signer,
// malformed; cosignatures verify with the witness trust file.
func exerciseClient(t *testing.T, s *Server, c submitter, alerts *alertSink) {
	t.Helper()
	ctx := t.Context()
	fx := newFixture(t)
	cp := fx.chain(3, 0)
	fork := fx.chain(3, 50)
	wtrust := witnessTrust(t, s)

	rec, err := c.Submit(ctx, cp[1].submission())
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Accepted || rec.Status != StatusAccepted || rec.Reason != nil || rec.WitnessIdentity != DefaultIdentity {
		t.Fatalf("first receipt %+v", rec)
	}
	if err := VerifyCosignature(wtrust, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.ParseTime(rec.ReceivedAt); err != nil {
		t.Fatalf("received_at %q: %v", rec.ReceivedAt, err)
	}
	// A receipt whose hash was swapped does not verify.
	forged := rec
	forged.CheckpointHashHex = fork[1].submission().CheckpointHashHex
	if err := VerifyCosignature(wtrust, forged); err == nil {
		t.Fatal("cosignature verified for another checkpoint")
	}

	rec, err = c.Submit(ctx, cp[1].submission())
	if err != nil || !rec.Accepted || VerifyCosignature(wtrust, rec) != nil {
		t.Fatalf("idempotent: %+v %v", rec, err)
	}
	rec, err = c.Submit(ctx, cp[2].submission())
	if err != nil || !rec.Accepted {
		t.Fatalf("extension: %+v %v", rec, err)
	}

	refusals := []struct {
		name   string
		sub    witness.Submission
		status string
	}{
		{"stale", cp[1].submission(), StatusStale},
		{"equivocation", fork[2].submission(), StatusEquivocation},
		{"not extending", fork[2].submission(), StatusEquivocation}, // same segment: still equivocation
	}
	for _, r := range refusals {
		rec, err := c.Submit(ctx, r.sub)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if rec.Accepted || rec.Status != r.status || rec.Reason == nil || rec.CosignatureHex != "" {
			t.Fatalf("%s: receipt %+v", r.name, rec)
		}
		if rec.CurrentHead == nil || rec.CurrentHead.SegmentID != cp[2].f.SegmentID || rec.CurrentHead.CheckpointHashHex != cp[2].submission().CheckpointHashHex {
			t.Fatalf("%s: current head %+v", r.name, rec.CurrentHead)
		}
		if VerifyCosignature(wtrust, rec) == nil {
			t.Fatalf("%s: refused receipt verified", r.name)
		}
	}
	if got := alerts.all(); len(got) != 2 || got[0].Kind != AlertEquivocation || got[0].SegmentID != cp[2].f.SegmentID || got[0].Stream != "s" {
		t.Fatalf("alerts %+v", got)
	}

	bad := cp[2]
	bad.sig = append([]byte(nil), bad.sig...)
	bad.sig[0] ^= 1
	rec, err = c.Submit(ctx, bad.submission())
	if err != nil || rec.Status != StatusBadSignature {
		t.Fatalf("bad signature: %+v %v", rec, err)
	}
	unknown := cp[2]
	unknown.id = "mallory"
	rec, err = c.Submit(ctx, unknown.submission())
	if err != nil || rec.Status != StatusUnknownSigner {
		t.Fatalf("unknown signer: %+v %v", rec, err)
	}
	noFields := cp[2].submission()
	noFields.Checkpoint = nil
	rec, err = c.Submit(ctx, noFields)
	if err != nil || rec.Status != StatusInvalid {
		t.Fatalf("invalid: %+v %v", rec, err)
	}
	head, ok, err := s.Head(ctx, "s")
	if err != nil || !ok || head.SegmentID != cp[2].f.SegmentID {
		t.Fatalf("head %+v %v %v", head, ok, err)
	}
	rows, _ := s.st.WitnessList(ctx, "s")
	if len(rows) != 2 {
		t.Fatalf("witness log has %d rows, want 2 (idempotent resubmission stores nothing)", len(rows))
	}
}

func TestHTTP(t *testing.T) {
	var alerts alertSink
	s := newWitness(t, newFixture(t).trust, func(c *Config) { c.OnAlert = alerts.add })
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	exerciseClient(t, s, NewHTTPClient(hs.URL), &alerts)

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(HeadPath + "s")
	var row wire.WitnessRow
	if code != 200 || json.Unmarshal([]byte(body), &row) != nil || row.SegmentID != 9 {
		t.Fatalf("head: %d %s", code, body)
	}
	if code, _ := get(HeadPath + "nope"); code != http.StatusNotFound {
		t.Fatalf("unknown head: %d", code)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz %d %q", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`securelog_witness_submissions_total{status="accepted"} 3`,
		`securelog_witness_submissions_total{status="equivocation"} 2`,
		`securelog_witness_alerts_total{kind="equivocation"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}

	// Status codes of the raw endpoint.
	post := func(body string) int {
		resp, err := http.Post(hs.URL+SubmitPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fx := newFixture(t)
	cp := fx.chain(3, 0)
	stale, _ := json.Marshal(cp[0].submission())
	for _, tc := range []struct {
		body string
		code int
	}{{"{not json", 400}, {`{"stream_id":"s"}`, 400}, {string(stale), 409}} {
		if got := post(tc.body); got != tc.code {
			t.Errorf("POST %.30q = %d, want %d", tc.body, got, tc.code)
		}
	}
	// A transport failure is an error, not a receipt.
	hs.Close()
	if _, err := NewHTTPClient(hs.URL).Submit(t.Context(), cp[2].submission()); err == nil {
		t.Fatal("submit to a closed server succeeded")
	}
}

func TestNATS(t *testing.T) {
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	alertsSeen := make(chan Alert, 4)
	sub, err := nc.Subscribe(AlertSubjectPrefix+">", func(m *nats.Msg) {
		var msg wire.AlertMsg
		if json.Unmarshal(m.Data, &msg) == nil && m.Subject == AlertSubject(msg.Stream) && msg.Source == "witness" && msg.Time != "" {
			alertsSeen <- Alert{Stream: msg.Stream, SegmentID: msg.SegmentID, Kind: msg.Kind, Detail: msg.Message}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var alerts alertSink
	s := newWitness(t, newFixture(t).trust, func(c *Config) { c.OnAlert = alerts.add; c.NATS = nc })
	ssub, err := s.ServeNATS(t.Context(), nc, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ssub.Unsubscribe() })
	exerciseClient(t, s, NewNATSClient(rpctest.Connect(t, ns), ""), &alerts)
	for range 2 {
		a := <-alertsSeen
		if a.Kind != AlertEquivocation || a.Stream != "s" {
			t.Fatalf("published alert %+v", a)
		}
	}
	// No responders is a transport error.
	if _, err := NewNATSClient(nc, "securelog.witness.nobody").Submit(t.Context(), witness.Submission{}); err == nil {
		t.Fatal("submit without responders succeeded")
	}
}

func TestAlertSubject(t *testing.T) {
	for in, want := range map[string]string{"default": "securelog.alert.default", "a.b c*>": "securelog.alert.a_b_c__", "": "securelog.alert._"} {
		if got := AlertSubject(in); got != want {
			t.Errorf("AlertSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRacingSubmissions: two different checkpoints extending the same head
// race; exactly one is accepted, the other is refused as equivocation.
func TestRacingSubmissions(t *testing.T) {
	fx := newFixture(t)
	cp := fx.chain(2, 0)
	// A second, validly signed successor of cp[0] with the same segment id.
	alt := cp[1].f
	alt.MerkleRoot = hashOf(200)
	other := fx.sign(alt)
	for round := range 20 {
		s := newWitness(t, fx.trust, nil)
		if rec, err := s.Submit(t.Context(), cp[0].submission()); err != nil || !rec.Accepted {
			t.Fatalf("seed: %+v %v", rec, err)
		}
		var wg sync.WaitGroup
		recs := make([]witness.Receipt, 2)
		for i, c := range []signedCP{cp[1], other} {
			wg.Go(func() {
				r, err := s.Submit(context.Background(), c.submission())
				if err != nil {
					t.Error(err)
				}
				recs[i] = r
			})
		}
		wg.Wait()
		if recs[0].Accepted == recs[1].Accepted {
			t.Fatalf("round %d: receipts %+v / %+v", round, recs[0], recs[1])
		}
		rows, _ := s.st.WitnessList(t.Context(), "s")
		if len(rows) != 2 {
			t.Fatalf("round %d: %d rows", round, len(rows))
		}
	}
}

func TestNewRequiresEd25519Key(t *testing.T) {
	s := newWitness(t, newFixture(t).trust, nil)
	for _, cfg := range []Config{
		{Trust: s.trust, Key: s.key},
		{Store: s.st, Key: s.key},
		{Store: s.st, Trust: s.trust},
		{Store: s.st, Trust: s.trust, Key: p256Labelled{edKey{seededKey("x")}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Fatalf("New(%+v) succeeded", cfg)
		}
	}
}

// p256Labelled claims another algorithm than Ed25519.
type p256Labelled struct{ edKey }

func (p256Labelled) Algorithm() string { return "ecdsa-p256" }
