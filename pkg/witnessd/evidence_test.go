package witnessd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// TestRefusedSignedConflictsAreEvidence reproduces issue 9 item 8: a
// validly signed checkpoint that conflicts with the witnessed head at a
// segment id other than the head's (a fork at a new id, or an older id the
// witness saw with another hash) used to be refused as not-extending or
// stale with no alert. Each is now an alert, a metric and a kept submission.
func TestRefusedSignedConflictsAreEvidence(t *testing.T) {
	fx := newFixture(t)
	cp := fx.chain(3, 0)    // segments 3, 6, 9; seq 1..10, 11..20, 21..30
	fork := fx.chain(4, 50) // the same ids and ranges, other roots
	at := func(seg, start, end uint64, prev []byte) signedCP {
		f := cp[0].f
		f.SegmentID, f.SeqStart, f.SeqEnd, f.PrevCheckpointHash = seg, start, end, prev
		f.MerkleRoot = hashOf(77)
		return fx.sign(f)
	}
	tests := []struct {
		name     string
		accept   []signedCP // witnessed first
		sub      witness.Submission
		status   string
		kind     string
		inDetail string
	}{
		{"fork at a new segment id", cp[:2], fork[2].submission(), StatusNotExtending, AlertUnlinked, "does not extend"},
		{"fork through an intermediate at the head's id", cp[:2], fork[2].submission(fork[1]), StatusNotExtending, AlertFork, "segment 6"},
		{"new id re-covering witnessed entries", cp[:3], at(12, 25, 40, cp[2].h).submission(), StatusNotExtending, AlertFork, "seq 25"},
		{"new id restarting the chain", cp[:3], at(12, 31, 40, wire.ZeroHash).submission(), StatusNotExtending, AlertFork, "first checkpoint"},
		{"older id witnessed with another hash", cp[:3], fork[1].submission(), StatusStale, AlertEquivocation, "segment 6"},
		{"older id overlapping witnessed entries", cp[:3], at(4, 5, 15, cp[0].h).submission(), StatusStale, AlertFork, "seq 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var alerts alertSink
			dir := filepath.Join(t.TempDir(), "evidence")
			s := newWitness(t, fx.trust, func(c *Config) { c.OnAlert = alerts.add; c.EvidenceDir = dir })
			for _, c := range tt.accept {
				if rec, err := s.Submit(t.Context(), c.submission()); err != nil || !rec.Accepted {
					t.Fatalf("setup: %+v %v", rec, err)
				}
			}
			rec, err := s.Submit(t.Context(), tt.sub)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Accepted || rec.Status != tt.status {
				t.Fatalf("receipt %+v, want status %s", rec, tt.status)
			}
			got := alerts.all()
			if len(got) != 1 || got[0].Kind != tt.kind || got[0].Stream != "s" || got[0].SegmentID != tt.sub.SegmentID || !strings.Contains(got[0].Detail, tt.inDetail) {
				t.Fatalf("alerts %+v, want one %q alert for segment %d mentioning %q", got, tt.kind, tt.sub.SegmentID, tt.inDetail)
			}
			if n := alertCount(t, s, tt.kind); n != 1 {
				t.Errorf("securelog_witness_alerts_total{kind=%q} = %v, want 1", tt.kind, n)
			}
			// The submission is kept, complete, readable only by the witness.
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			if len(files) != 1 {
				t.Fatalf("evidence files %v, want 1", files)
			}
			if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("evidence file mode %v %v, want 0600", fi.Mode(), err)
			}
			b, _ := os.ReadFile(files[0])
			var ev Evidence
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tt.kind || ev.Status != tt.status || ev.Submission.CheckpointHashHex != tt.sub.CheckpointHashHex ||
				ev.Submission.Checkpoint == nil || len(ev.Submission.Intermediate) != len(tt.sub.Intermediate) ||
				ev.Head == nil || ev.Head.SegmentID != tt.accept[len(tt.accept)-1].f.SegmentID {
				t.Errorf("evidence %+v", ev)
			}
			// The same submission again is not kept twice.
			if _, err := s.Submit(t.Context(), tt.sub); err != nil {
				t.Fatal(err)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) != 1 {
				t.Errorf("after a repeat: evidence files %v", files)
			}
		})
	}
}

// TestBenignRefusalsAreNotEvidence: a resubmitted older checkpoint the
// witness accepted, bad signatures and unknown signers raise no alert and
// keep nothing (they prove nothing about the log).
func TestBenignRefusalsAreNotEvidence(t *testing.T) {
	fx := newFixture(t)
	cp := fx.chain(3, 0)
	var alerts alertSink
	dir := filepath.Join(t.TempDir(), "evidence")
	s := newWitness(t, fx.trust, func(c *Config) { c.OnAlert = alerts.add; c.EvidenceDir = dir })
	for _, c := range cp {
		if rec, err := s.Submit(t.Context(), c.submission()); err != nil || !rec.Accepted {
			t.Fatalf("setup: %+v %v", rec, err)
		}
	}
	bad := fx.chain(4, 50)[3]
	bad.sig = append([]byte(nil), bad.sig...)
	bad.sig[0] ^= 1
	unknown := fx.chain(4, 50)[3]
	unknown.id = "mallory"
	for _, sub := range []witness.Submission{cp[0].submission(), cp[1].submission(), bad.submission(), unknown.submission()} {
		if rec, err := s.Submit(t.Context(), sub); err != nil || rec.Accepted {
			t.Fatalf("%+v %v", rec, err)
		}
	}
	if got := alerts.all(); len(got) != 0 {
		t.Errorf("alerts %+v", got)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) != 0 {
		t.Errorf("evidence files %v", files)
	}
}

// alertCount reads securelog_witness_alerts_total{kind} from the registry.
func alertCount(t *testing.T, s *Server, kind string) float64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "securelog_witness_alerts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestUnlinkedThenResubmittedWithIntermediates: a signer that does not know
// the witness's head submits its newest checkpoint alone; the witness
// cannot link it (an "unlinked" alert: it cannot tell a fork from
// checkpoints it missed) and the resubmission carrying the intermediate
// checkpoints is accepted.
func TestUnlinkedThenResubmittedWithIntermediates(t *testing.T) {
	fx := newFixture(t)
	cp := fx.chain(3, 0)
	var alerts alertSink
	s := newWitness(t, fx.trust, func(c *Config) { c.OnAlert = alerts.add })
	if rec, err := s.Submit(t.Context(), cp[0].submission()); err != nil || !rec.Accepted {
		t.Fatalf("%+v %v", rec, err)
	}
	rec, err := s.Submit(t.Context(), cp[2].submission())
	if err != nil || rec.Status != StatusNotExtending || rec.CurrentHead == nil || rec.CurrentHead.SegmentID != 3 {
		t.Fatalf("%+v %v", rec, err)
	}
	if rec, err = s.Submit(t.Context(), cp[2].submission(cp[1])); err != nil || !rec.Accepted {
		t.Fatalf("resubmission: %+v %v", rec, err)
	}
	if got := alerts.all(); len(got) != 1 || got[0].Kind != AlertUnlinked {
		t.Fatalf("alerts %+v", got)
	}
	if ev, err := s.Evidence(); err != nil || len(ev) != 1 || ev[0].Kind != AlertUnlinked {
		t.Fatalf("in-memory evidence %+v %v", ev, err)
	}
}
