package bundle_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/bundle"
)

func TestAuditRealLog(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		opts       bundle.AuditOptions
		source     string
		cosigned   int
		decrypted  uint64
		sealedOpen uint64
	}{
		{"bundle trust", bundle.AuditOptions{}, bundle.TrustFromBundle, 0, 0, 0},
		{"trust file", bundle.AuditOptions{Trust: f.trust}, bundle.TrustFromOptions, 0, 0, 0},
		{"witnesses and kek", bundle.AuditOptions{Trust: f.trust, WitnessTrust: f.witnessTrust, KEK: f.kek}, bundle.TrustFromOptions, 3, f.sealedInSegs, f.tail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			tt.opts.Progress = func(done, total uint64) { calls++ }
			rep, err := auditFile(t, f.path, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.TrustSource != tt.source || rep.Segments != f.segments || rep.Signed != f.segments {
				t.Errorf("report %+v", rep)
			}
			if want := f.sealedInSegs + f.tail; rep.Entries != want || rep.Sealed != want || rep.OpenEntries != f.tail {
				t.Errorf("entries %d sealed %d open %d, want %d, %d, %d", rep.Entries, rep.Sealed, rep.OpenEntries, want, want, f.tail)
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
	f := newFixture(t)
	bad := bytes.Clone(f.kek)
	bad[0] ^= 1
	_, err := auditFile(t, f.path, bundle.AuditOptions{KEK: bad})
	if err == nil || !strings.Contains(err.Error(), "seqno 2:") || !strings.Contains(err.Error(), "does not decrypt") {
		t.Fatalf("got %v, want a decryption failure at seqno 2 (the first sealed entry)", err)
	}
}

func TestAuditUnknownWitness(t *testing.T) {
	f := newFixture(t)
	_, err := auditFile(t, f.path, bundle.AuditOptions{WitnessTrust: f.trust})
	if err == nil || !strings.Contains(err.Error(), "witness_receipts[0]") {
		t.Fatalf("got %v, want witness_receipts[0] failure", err)
	}
}

// mutation is one single-field change of the bundle JSON.
type mutation struct {
	name  string
	apply func(doc map[string]any)
	spots []string // the error must contain one of these
}

// mutate returns a different value of the same JSON kind, or false.
func mutate(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		if b, err := hex.DecodeString(x); err == nil && len(b) > 0 {
			b[0] ^= 0x10
			return hex.EncodeToString(b), true
		}
		return x + "x", true
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return nil, false
		}
		return json.Number(fmt.Sprint(n + 1)), true
	case bool:
		return !x, true
	case []any:
		if len(x) == 0 {
			return []any{json.Number("0")}, true
		}
		out := append([]any(nil), x...)
		if n, ok := out[0].(json.Number); ok {
			i, _ := n.Int64()
			out[0] = json.Number(fmt.Sprint(i ^ 1))
			return out, true
		}
	}
	return nil, false
}

// fieldMutations changes each field of the object at doc[member][i].
func fieldMutations(doc map[string]any, member string, skip map[string]bool, spots func(i int, obj map[string]any) []string) []mutation {
	var out []mutation
	for i, o := range doc[member].([]any) {
		obj := o.(map[string]any)
		for field, val := range obj {
			if skip[field] {
				continue
			}
			if member == "segments" && field == "entries" {
				for j := range val.([]any) {
					for k := 0; k < 2; k++ {
						out = append(out, mutation{fmt.Sprintf("%s[%d].entries[%d][%d]", member, i, j, k), func(doc map[string]any) {
							pair := doc[member].([]any)[i].(map[string]any)["entries"].([]any)[j].([]any)
							pair[k], _ = mutate(pair[k])
						}, spots(i, obj)})
					}
				}
				continue
			}
			if _, ok := mutate(val); !ok {
				continue
			}
			out = append(out, mutation{fmt.Sprintf("%s[%d].%s", member, i, field), func(doc map[string]any) {
				o := doc[member].([]any)[i].(map[string]any)
				o[field], _ = mutate(o[field])
			}, spots(i, obj)})
		}
	}
	return out
}

func decodeDoc(t *testing.T, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestAuditEverySingleFieldChange mutates, one at a time, every field of
// every entry row, every field of every segment row (each membership
// number too), every trust entry field and every authenticated receipt
// field, and expects the audit to fail naming the spot. Receipt fields
// received_at_rfc3339 and reason are not authenticated by anything and are
// not mutated.
func TestAuditEverySingleFieldChange(t *testing.T) {
	f := newFixture(t)
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	base := decodeDoc(t, data)
	// The re-encoded, unmutated document (keys now sorted) still audits.
	re, _ := json.Marshal(base)
	p := filepath.Join(t.TempDir(), "re.json")
	if err := os.WriteFile(p, re, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := bundle.AuditOptions{WitnessTrust: f.witnessTrust, KEK: f.kek}
	if _, err := auditFile(t, p, opts); err != nil {
		t.Fatalf("re-encoded bundle: %v", err)
	}

	var muts []mutation
	muts = append(muts, fieldMutations(base, "entries", nil, func(i int, o map[string]any) []string {
		return []string{fmt.Sprintf("entries[%d]", i)}
	})...)
	muts = append(muts, fieldMutations(base, "segments", nil, func(i int, o map[string]any) []string {
		return []string{fmt.Sprintf("segments[%d]", i), fmt.Sprintf("segment %s", o["segment_id"])}
	})...)
	muts = append(muts, fieldMutations(base, "trust", nil, func(i int, o map[string]any) []string {
		return []string{fmt.Sprintf("%q", o["identity"]), fmt.Sprintf("'%s'", o["identity"])}
	})...)
	muts = append(muts, fieldMutations(base, "witness_receipts", map[string]bool{"received_at_rfc3339": true, "reason": true},
		func(i int, o map[string]any) []string { return []string{fmt.Sprintf("witness_receipts[%d]", i)} })...)
	for _, top := range []string{"format", "stream"} {
		muts = append(muts, mutation{top, func(doc map[string]any) { doc[top], _ = mutate(doc[top]) }, []string{top}})
	}
	counts := map[string]int{}
	for _, m := range muts {
		counts[strings.SplitN(m.name, "[", 2)[0]]++
	}
	if counts["entries"] < 12*int(f.sealedInSegs) || counts["segments"] < 10*f.segments || counts["trust"] != 9 || counts["witness_receipts"] != 21 {
		t.Fatalf("mutation counts %v look too small", counts)
	}
	dir := t.TempDir()
	for i, m := range muts {
		doc := decodeDoc(t, data)
		m.apply(doc)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("m%d.json", i))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = auditFile(t, path, opts)
		if err == nil {
			t.Errorf("%s: audit passed", m.name)
			continue
		}
		if testing.Verbose() {
			t.Logf("%s: %v", m.name, err)
		}
		found := false
		for _, s := range m.spots {
			found = found || strings.Contains(err.Error(), s)
		}
		if !found {
			t.Errorf("%s: error %q names none of %q", m.name, err, m.spots)
		}
	}
}
