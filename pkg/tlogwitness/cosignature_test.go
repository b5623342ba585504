package tlogwitness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// edKey is an in-memory Ed25519Key.
type edKey struct{ priv ed25519.PrivateKey }

func (k edKey) PublicKey() []byte               { return k.priv.Public().(ed25519.PublicKey) }
func (k edKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

func seeded(label string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(label))
	return ed25519.NewKeyFromSeed(s[:])
}

// testLog is a log key that signs checkpoints of origin.
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
}

func newTestLog(t testing.TB, origin string) testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testLog{origin: origin, signer: s, vkey: vkey}
}

func (l testLog) verifier(t testing.TB) note.Verifier {
	t.Helper()
	v, err := NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sign returns the signed checkpoint of the tree of the given leaves.
func (l testLog) sign(t testing.TB, size int64, hash tlog.Hash) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: Checkpoint{Origin: l.origin, Size: size, Root: hash}.String()}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestCosignatureInteropWithTorchwood(t *testing.T) {
	priv := seeded("w1")
	ours, err := NewCosignatureSigner("witness.example/w1", edKey{priv}, fixed(t0))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := torchwood.NewCosignatureSigner("witness.example/w1", priv)
	if err != nil {
		t.Fatal(err)
	}
	if ours.VerifierKey() != theirs.Verifier().String() || ours.KeyHash() != theirs.KeyHash() {
		t.Fatalf("vkey %s (ours) vs %s (torchwood)", ours.VerifierKey(), theirs.Verifier().String())
	}
	lg := newTestLog(t, "example.com/log")
	cp := lg.sign(t, 5, tlog.Hash{1})
	n, err := note.Open(cp, note.VerifierList(lg.verifier(t)))
	if err != nil {
		t.Fatal(err)
	}
	ourVerifier, err := NewVerifier(ours.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string]struct {
		s note.Signer
		v note.Verifier
	}{"ours→torchwood": {ours, theirs.Verifier()}, "torchwood→ours": {theirs, ourVerifier}} {
		signed, err := note.Sign(&note.Note{Text: n.Text}, pair.s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := note.Open(signed, note.VerifierList(pair.v))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tm, err := CosignatureTime(got.Sigs[0])
		if err != nil || tm.IsZero() {
			t.Fatalf("%s: time %v, %v", name, tm, err)
		}
		if ts, err := torchwood.CosignatureTimestamp(got.Sigs[0]); err != nil || ts != tm.Unix() {
			t.Fatalf("%s: torchwood reads timestamp %d (%v), we read %d", name, ts, err, tm.Unix())
		}
		// One flipped bit anywhere in the signature is refused.
		raw, _ := base64.StdEncoding.DecodeString(got.Sigs[0].Base64)
		for _, i := range []int{4, 11, 12, len(raw) - 1} {
			bad := append([]byte(nil), raw...)
			bad[i] ^= 1
			tampered := []byte(n.Text + "\n— " + got.Sigs[0].Name + " " + base64.StdEncoding.EncodeToString(bad) + "\n")
			var inv *note.InvalidSignatureError
			if _, err := note.Open(tampered, note.VerifierList(pair.v)); !errors.As(err, &inv) {
				t.Errorf("%s: byte %d flipped: %v, want *note.InvalidSignatureError", name, i, err)
			}
		}
	}
	if ours.VerifierKey() != VerifierKey("witness.example/w1", SigTypeCosignatureV1, priv.Public().(ed25519.PublicKey)) {
		t.Fatal("VerifierKey disagrees with the signer's vkey")
	}
}

func TestCosignatureRefusals(t *testing.T) {
	priv := seeded("w1")
	v, err := NewCosignatureVerifier("w1", priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	text := Checkpoint{Origin: "o", Size: 1, Root: tlog.Hash{2}}.String()
	mk := func(ts uint64, msg string) []byte {
		return append(binary.BigEndian.AppendUint64(nil, ts), ed25519.Sign(priv, CosignatureMessage(ts, msg))...)
	}
	if !v.Verify([]byte(text), mk(1700000000, text)) {
		t.Fatal("valid cosignature refused")
	}
	for name, tc := range map[string]struct {
		msg string
		sig []byte
	}{
		"zero timestamp":      {text, mk(0, text)},
		"timestamp ≥ 2^63":    {text, mk(1<<63, text)},
		"not a checkpoint":    {"hello\n", mk(1700000000, "hello\n")},
		"short signature":     {text, mk(1700000000, text)[:70]},
		"other time in sig":   {text, append(binary.BigEndian.AppendUint64(nil, 1700000001), mk(1700000000, text)[8:]...)},
		"v1 message mismatch": {text, append(binary.BigEndian.AppendUint64(nil, 1700000000), ed25519.Sign(priv, []byte(text))...)},
	} {
		if v.Verify([]byte(tc.msg), tc.sig) {
			t.Errorf("%s: accepted", name)
		}
	}
	s, err := NewCosignatureSigner("w1", edKey{priv}, fixed(time.Unix(0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign([]byte(text)); err == nil {
		t.Error("signed with a zero timestamp")
	}
	if _, err := NewCosignatureSigner("w 1", edKey{priv}, nil); err == nil {
		t.Error("name with a space accepted")
	}
}

func TestNewVerifier(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	v, err := NewVerifier(lg.vkey)
	if err != nil || v.Name() != "example.com/log" {
		t.Fatalf("log vkey: %v", err)
	}
	wv := VerifierKey("w", SigTypeCosignatureV1, seeded("w").Public().(ed25519.PublicKey))
	if v, err := NewVerifier(wv); err != nil {
		t.Fatal(err)
	} else if _, ok := v.(*CosignatureVerifier); !ok {
		t.Fatalf("cosignature vkey gave %T", v)
	}
	for _, bad := range []string{
		"", "w", "w+00000000", "w+zzzzzzzz+AA==",
		"w+00000000+" + wv[len(wv)-44:],                                  // wrong key ID
		VerifierKey("w", 0x06, seeded("w").Public().(ed25519.PublicKey)), // unsupported type
		"w x+" + wv[2:],                          // bad name
		wv[:len(wv)-1] + string(wv[len(wv)-1]^1), // corrupted key
		VerifierKey("w", SigTypeCosignatureV1, seeded("w").Public().(ed25519.PublicKey)[:31]), // short key
	} {
		if _, err := NewVerifier(bad); err == nil {
			t.Errorf("NewVerifier(%q) succeeded", bad)
		}
	}
}
