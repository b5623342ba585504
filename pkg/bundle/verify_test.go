package bundle_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/bundle/bundletest"
)

func TestAuditRealLog(t *testing.T) {
	f := bundletest.NewFixture(t)
	tests := []struct {
		name       string
		opts       bundle.AuditOptions
		source     string
		cosigned   int
		decrypted  uint64
		sealedOpen uint64
	}{
		{"bundle trust", bundle.AuditOptions{}, bundle.TrustFromBundle, 0, 0, 0},
		{"trust file", bundle.AuditOptions{Trust: f.Trust}, bundle.TrustFromOptions, 0, 0, 0},
		{"witnesses and kek", bundle.AuditOptions{Trust: f.Trust, WitnessTrust: f.WitnessTrust, KEK: f.KEK}, bundle.TrustFromOptions, 3, f.SealedInSegs, f.Tail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			tt.opts.Progress = func(done, total uint64) { calls++ }
			rep, err := auditFile(t, f.Path, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.TrustSource != tt.source || rep.Segments != f.Segments || rep.Signed != f.Segments {
				t.Errorf("report %+v", rep)
			}
			if want := f.SealedInSegs + f.Tail; rep.Entries != want || rep.Sealed != want || rep.OpenEntries != f.Tail {
				t.Errorf("entries %d sealed %d open %d, want %d, %d, %d", rep.Entries, rep.Sealed, rep.OpenEntries, want, want, f.Tail)
			}
			if rep.Receipts != 3 || rep.CosignaturesVerified != tt.cosigned || rep.Decrypted != tt.decrypted || rep.SealedOpen != tt.sealedOpen {
				t.Errorf("receipts %d cosigned %d decrypted %d sealed-open %d", rep.Receipts, rep.CosignaturesVerified, rep.Decrypted, rep.SealedOpen)
			}
			if calls == 0 {
				t.Error("progress never called")
			}
		})
	}
}

func TestAuditWrongKEKNamesSeqno(t *testing.T) {
	f := bundletest.NewFixture(t)
	bad := bytes.Clone(f.KEK)
	bad[0] ^= 1
	_, err := auditFile(t, f.Path, bundle.AuditOptions{KEK: bad})
	if err == nil || !strings.Contains(err.Error(), "seqno 2:") || !strings.Contains(err.Error(), "does not decrypt") {
		t.Fatalf("got %v, want a decryption failure at seqno 2 (the first sealed entry)", err)
	}
}

func TestAuditUnknownWitness(t *testing.T) {
	f := bundletest.NewFixture(t)
	_, err := auditFile(t, f.Path, bundle.AuditOptions{WitnessTrust: f.Trust})
	if err == nil || !strings.Contains(err.Error(), "witness_receipts[0]") {
		t.Fatalf("got %v, want witness_receipts[0] failure", err)
	}
}

// TestAuditEverySingleFieldChange mutates, one at a time, every field of
// every entry row, every field of every segment row (each membership
// number too), every trust entry field and every authenticated receipt
// field, and expects the audit to fail naming the spot. Receipt fields
// received_at_rfc3339 and reason are not authenticated by anything and are
// not mutated.
func TestAuditEverySingleFieldChange(t *testing.T) {
	f := bundletest.NewFixture(t)
	data, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	base := bundletest.DecodeDoc(t, data)
	// The re-encoded, unmutated document (keys now sorted) still audits.
	re, _ := json.Marshal(base)
	p := filepath.Join(t.TempDir(), "re.json")
	if err := os.WriteFile(p, re, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := bundle.AuditOptions{WitnessTrust: f.WitnessTrust, KEK: f.KEK}
	if _, err := auditFile(t, p, opts); err != nil {
		t.Fatalf("re-encoded bundle: %v", err)
	}

	muts := bundletest.Mutations(base)
	counts := map[string]int{}
	for _, m := range muts {
		counts[strings.SplitN(m.Name, "[", 2)[0]]++
	}
	if counts["entries"] < 12*int(f.SealedInSegs) || counts["segments"] < 10*f.Segments || counts["trust"] != 9 || counts["witness_receipts"] != 21 {
		t.Fatalf("mutation counts %v look too small", counts)
	}
	dir := t.TempDir()
	for i, m := range muts {
		path := filepath.Join(dir, fmt.Sprintf("m%d.json", i))
		bundletest.WriteMutated(t, data, m, path)
		_, err = auditFile(t, path, opts)
		if err == nil {
			t.Errorf("%s: audit passed", m.Name)
			continue
		}
		if testing.Verbose() {
			t.Logf("%s: %v", m.Name, err)
		}
		found := false
		for _, s := range m.Spots {
			found = found || strings.Contains(err.Error(), s)
		}
		if !found {
			t.Errorf("%s: error %q names none of %q", m.Name, err, m.Spots)
		}
	}
}
