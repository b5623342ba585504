// Package bundletest builds exported bundles of a real log and the
// corpus of single-field tamperings used to test bundle verifiers (the
// native one in pkg/bundle and the WebAssembly one in cmd/securelog-verifier).
package bundletest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Fixture is an exported bundle of a real log and what verifies it.
type Fixture struct {
	// Path is the bundle file (stream "secrets").
	Path string
	// Trust holds the signers' public keys; TrustEntries lists them.
	Trust        *checkpoint.Trust
	TrustEntries []checkpoint.TrustEntry
	// WitnessTrust holds the witness key; WitnessEntries lists it.
	WitnessTrust   *checkpoint.Trust
	WitnessEntries []checkpoint.TrustEntry
	// KEK seals the stream's payloads.
	KEK []byte
	// SealedInSegs counts sealed entries inside segments.
	SealedInSegs uint64
	// Tail counts entries after the last segment.
	Tail uint64
	// Segments counts the bundle's segments.
	Segments int
}

// fakeClock returns increasing times one millisecond apart.
func fakeClock() func() time.Time {
	t0 := time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC)
	var n int64
	return func() time.Time {
		n++
		return t0.Add(time.Duration(n) * time.Millisecond)
	}
}

// NewFixture builds a log with three interleaved streams ("default",
// "secrets" sealed under tier protected, "ops"), closes three segments per
// stream, signs the segments of "secrets" with an ed25519, an ecdsa-p256 and
// an rsa-pss-sha256 key in turn, leaves two entries of "secrets" after its
// last segment, has a witness cosign every "secrets" checkpoint, and exports
// stream "secrets".
func NewFixture(t testing.TB) *Fixture {
	t.Helper()
	ctx := context.Background()
	ks, err := keystore.OpenSoftware(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var entries []checkpoint.TrustEntry
	ids := map[string]string{}
	for _, alg := range keystore.Algorithms {
		id := "attest-" + alg
		k, err := ks.Generate(id, alg)
		if err != nil {
			t.Fatal(err)
		}
		ids[alg] = id
		entries = append(entries, checkpoint.TrustEntry{Identity: id, Algorithm: alg, PublicKey: k.PublicKey()})
	}
	trust, err := checkpoint.NewTrust(entries...)
	if err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	st := memory.New()
	l := securelog.New(st, securelog.Options{Signer: ks, Trust: trust, KEK: kek, Now: fakeClock(), SessionID: "sess", BootID: "boot", Logger: slog.New(slog.DiscardHandler)})
	if err := l.Open(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := l.CreateStream(ctx, "secrets", "protected", nil); err != nil {
		t.Fatal(err)
	}
	f := &Fixture{Trust: trust, TrustEntries: entries, KEK: kek}
	app := func(stream string, i int) {
		t.Helper()
		if _, err := l.Append(ctx, stream, "ev."+stream, wire.Info, "p", []byte{byte(i), 'x'}); err != nil {
			t.Fatal(err)
		}
	}
	var secretSegs []uint64
	for round := 0; round < 3; round++ {
		for i := 0; i < 4+round; i++ {
			app("default", i)
			app("secrets", i)
			app("ops", i)
			f.SealedInSegs++
		}
		for _, s := range []string{"secrets", "ops", "default"} {
			seg, err := l.CloseSegment(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if s == "secrets" {
				secretSegs = append(secretSegs, seg.SegmentID)
				if _, _, err := l.SignSegment(ctx, ids[keystore.Algorithms[round]], seg.SegmentID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	app("secrets", 100)
	app("default", 100)
	app("secrets", 101)
	f.Tail = 2
	f.Segments = len(secretSegs)

	wpub, wpriv, _ := ed25519.GenerateKey(rand.Reader)
	f.WitnessEntries = []checkpoint.TrustEntry{{Identity: "witness-1", Algorithm: keystore.Ed25519, PublicKey: wpub}}
	f.WitnessTrust, err = checkpoint.NewTrust(f.WitnessEntries...)
	if err != nil {
		t.Fatal(err)
	}
	var receipts []witness.Receipt
	for _, id := range secretSegs {
		_, _, h, err := l.Checkpoint(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, witness.Receipt{StreamID: "secrets", SegmentID: id, CheckpointHashHex: hex.EncodeToString(h),
			Accepted: true, ReceivedAt: "2026-04-10T00:00:01Z", Status: "accepted", WitnessIdentity: "witness-1",
			CosignatureHex: hex.EncodeToString(ed25519.Sign(wpriv, h))})
	}
	var buf bytes.Buffer
	if _, err := bundle.Write(ctx, &buf, audit.StoreSource{Store: st}, "secrets", entries, receipts); err != nil {
		t.Fatal(err)
	}
	f.Path = filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(f.Path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// Mutation is one single-field change of the bundle JSON.
type Mutation struct {
	// Name is the changed field's path, such as "entries[3].payload".
	Name string
	// Apply changes the decoded document in place.
	Apply func(doc map[string]any)
	// Spots are the names an audit error must contain one of.
	Spots []string
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
func fieldMutations(doc map[string]any, member string, skip map[string]bool, spots func(i int, obj map[string]any) []string) []Mutation {
	var out []Mutation
	for i, o := range doc[member].([]any) {
		obj := o.(map[string]any)
		for field, val := range obj {
			if skip[field] {
				continue
			}
			if member == "segments" && field == "entries" {
				for j := range val.([]any) {
					for k := 0; k < 2; k++ {
						out = append(out, Mutation{fmt.Sprintf("%s[%d].entries[%d][%d]", member, i, j, k), func(doc map[string]any) {
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
			out = append(out, Mutation{fmt.Sprintf("%s[%d].%s", member, i, field), func(doc map[string]any) {
				o := doc[member].([]any)[i].(map[string]any)
				o[field], _ = mutate(o[field])
			}, spots(i, obj)})
		}
	}
	return out
}

// DecodeDoc decodes a bundle keeping numbers exact.
func DecodeDoc(t testing.TB, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Mutations lists one change of every field of every entry row, every
// field of every segment row (each membership number too), every trust
// entry field and every authenticated receipt field of the bundle doc, and
// of the top-level format and stream. Receipt fields received_at_rfc3339
// and reason are not authenticated by anything and are not mutated.
func Mutations(doc map[string]any) []Mutation {
	var muts []Mutation
	muts = append(muts, fieldMutations(doc, "entries", nil, func(i int, o map[string]any) []string {
		return []string{fmt.Sprintf("entries[%d]", i)}
	})...)
	muts = append(muts, fieldMutations(doc, "segments", nil, func(i int, o map[string]any) []string {
		return []string{fmt.Sprintf("segments[%d]", i), fmt.Sprintf("segment %s", o["segment_id"])}
	})...)
	muts = append(muts, fieldMutations(doc, "trust", nil, func(i int, o map[string]any) []string {
		return []string{fmt.Sprintf("%q", o["identity"]), fmt.Sprintf("'%s'", o["identity"])}
	})...)
	muts = append(muts, fieldMutations(doc, "witness_receipts", map[string]bool{"received_at_rfc3339": true, "reason": true},
		func(i int, o map[string]any) []string { return []string{fmt.Sprintf("witness_receipts[%d]", i)} })...)
	for _, top := range []string{"format", "stream"} {
		muts = append(muts, Mutation{top, func(doc map[string]any) { doc[top], _ = mutate(doc[top]) }, []string{top}})
	}
	return muts
}

// WriteMutated writes the bundle data with m applied to path.
func WriteMutated(t testing.TB, data []byte, m Mutation, path string) {
	t.Helper()
	doc := DecodeDoc(t, data)
	m.Apply(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteTrust writes entries as a trust file at path.
func WriteTrust(t testing.TB, entries []checkpoint.TrustEntry, path string) {
	t.Helper()
	b, err := checkpoint.MarshalTrust(entries)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
