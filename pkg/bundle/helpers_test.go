package bundle_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
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

// fixture is an exported bundle of a real log and what verifies it.
type fixture struct {
	path         string
	trust        *checkpoint.Trust
	witnessTrust *checkpoint.Trust
	kek          []byte
	sealedInSegs uint64 // sealed entries inside segments
	tail         uint64 // entries after the last segment
	segments     int
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

// newFixture builds a log with three interleaved streams ("default",
// "secrets" sealed under tier protected, "ops"), closes three segments per
// stream, signs the segments of "secrets" with an ed25519, an ecdsa-p256 and
// an rsa-pss-sha256 key in turn, leaves two entries of "secrets" after its
// last segment, has a witness cosign every "secrets" checkpoint, and exports
// stream "secrets".
func newFixture(t testing.TB) *fixture {
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
	f := &fixture{trust: trust, kek: kek}
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
			f.sealedInSegs++
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
	f.tail = 2
	f.segments = len(secretSegs)

	wpub, wpriv, _ := ed25519.GenerateKey(rand.Reader)
	f.witnessTrust, err = checkpoint.NewTrust(checkpoint.TrustEntry{Identity: "witness-1", Algorithm: keystore.Ed25519, PublicKey: wpub})
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
	f.path = filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(f.path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// auditFile opens and audits a bundle file.
func auditFile(t testing.TB, path string, opts bundle.AuditOptions) (bundle.AuditReport, error) {
	t.Helper()
	r, err := bundle.Open(path)
	if err != nil {
		return bundle.AuditReport{}, err
	}
	defer r.Close()
	return bundle.Audit(context.Background(), r, opts)
}
