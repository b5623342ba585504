package tlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/keystore"
)

func softwareKey(t *testing.T, alg string) keystore.Key {
	t.Helper()
	ks, err := keystore.OpenSoftware(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.GetKeyOrCreate(context.Background(), "log", alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The note package (code we did not write) opens a checkpoint signed through
// the keystore with the vkey we print.
func TestCheckpointOpensWithNoteVerifier(t *testing.T) {
	key := softwareKey(t, keystore.Ed25519)
	origin := DefaultOrigin("log")
	s, err := NewNoteSigner(origin, key)
	if err != nil {
		t.Fatal(err)
	}
	c := Checkpoint{Origin: origin, Size: 5, Root: tlog.RecordHash([]byte("x"))}
	msg, err := SignCheckpoint(c, s)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := VerifierKey(origin, key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("note.NewVerifier(%q): %v", vkey, err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open: %v\n%s", err, msg)
	}
	if n.Text != string(c.Text()) || len(n.Sigs) != 1 || n.Sigs[0].Name != origin {
		t.Fatalf("opened %+v", n)
	}
	got, _, err := OpenCheckpoint(msg, origin, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 5 || got.Root != c.Root || got.Origin != origin {
		t.Fatalf("got %+v", got)
	}
	// Another origin: refused.
	if _, _, err := OpenCheckpoint(msg, "other", note.VerifierList(v)); err == nil {
		t.Fatal("opened with the wrong origin")
	}
	// A tampered size: the signature no longer verifies.
	bad := bytes.Replace(msg, []byte("\n5\n"), []byte("\n6\n"), 1)
	if _, _, err := OpenCheckpoint(bad, origin, note.VerifierList(v)); err == nil {
		t.Fatal("tampered checkpoint opened")
	}
	// An unknown key only: no log signature.
	_, other, _ := ed25519.GenerateKey(nil)
	ok, _ := keystore.KeyFromSigner(other)
	s2, _ := NewNoteSigner(origin, ok)
	msg2, _ := SignCheckpoint(c, s2)
	if _, _, err := OpenCheckpoint(msg2, origin, note.VerifierList(v)); !errors.Is(err, ErrNoLogSignature) {
		t.Fatalf("err = %v, want ErrNoLogSignature", err)
	}
}

func TestNoteSignerRejectsNonEd25519(t *testing.T) {
	key := softwareKey(t, keystore.ECDSAP256)
	if _, err := NewNoteSigner("x", key); err == nil {
		t.Fatal("ecdsa key accepted as a note signer")
	}
	if _, err := NewNoteSigner("a b", softwareKey(t, keystore.Ed25519)); err == nil {
		t.Fatal("name with a space accepted")
	}
}

func TestKeyHashMatchesNote(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	vkey, err := note.NewEd25519VerifierKey("example.com/log", pub)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := note.NewVerifier(vkey)
	if got := KeyHash("example.com/log", pub); got != v.KeyHash() {
		t.Fatalf("KeyHash = %08x, note says %08x", got, v.KeyHash())
	}
}

func TestParseCheckpoint(t *testing.T) {
	root := tlog.RecordHash(nil)
	good := Checkpoint{Origin: "example.com/log", Size: 20852163, Root: root}
	c, err := ParseCheckpoint(good.Text())
	if err != nil || c.Origin != good.Origin || c.Size != good.Size || c.Root != root {
		t.Fatalf("round trip: %+v, %v", c, err)
	}
	ext := Checkpoint{Origin: "o", Size: 0, Root: root, Extensions: []string{"a b", "c"}}
	if c, err := ParseCheckpoint(ext.Text()); err != nil || len(c.Extensions) != 2 {
		t.Fatalf("extensions: %+v %v", c, err)
	}
	b64 := EncodeHash(root)
	for _, bad := range []string{
		"",
		"o\n1\n" + b64,             // no final newline
		"o\n1\n",                   // two lines
		"\n1\n" + b64 + "\n",       // empty origin
		"a b\n1\n" + b64 + "\n",    // space in origin
		"a+b\n1\n" + b64 + "\n",    // plus in origin
		"o\n01\n" + b64 + "\n",     // leading zero
		"o\n-1\n" + b64 + "\n",     // negative
		"o\n+1\n" + b64 + "\n",     // sign
		"o\n1\n" + b64[:43] + "\n", // short base64
		"o\n1\n" + strings.TrimSuffix(b64, "=") + "\n",
		"o\n1\n" + b64 + "\n\n", // empty extension line
		"o\n1\nAAAA\n",          // 3 bytes
	} {
		if _, err := ParseCheckpoint([]byte(bad)); err == nil {
			t.Errorf("ParseCheckpoint(%q) accepted", bad)
		}
	}
	// Non-canonical base64: an unused low bit of the last character set.
	zero := EncodeHash(tlog.Hash{}) // "AAA…A="
	nc := zero[:42] + "B="
	if _, err := DecodeHash(nc); err == nil {
		t.Errorf("non-canonical base64 %q accepted", nc)
	}
	if _, err := ParseCheckpoint([]byte("o\n1\n" + nc + "\n")); err == nil {
		t.Errorf("checkpoint with non-canonical root %q accepted", nc)
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("example.com/log\n1\n" + EncodeHash(tlog.RecordHash(nil)) + "\n"))
	f.Add([]byte("o\n0\nAAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Text(), b) {
			t.Fatalf("accepted %q but re-encodes as %q", b, c.Text())
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	k, _ := keystore.KeyFromSigner(priv)
	s, _ := NewNoteSigner("o", k)
	vkey, _ := VerifierKey("o", pub)
	v, _ := note.NewVerifier(vkey)
	msg, _ := SignCheckpoint(Checkpoint{Origin: "o", Size: 3}, s)
	f.Add(msg)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, err := OpenCheckpoint(b, "o", note.VerifierList(v))
		if err != nil {
			return
		}
		if string(c.Text()) != n.Text || c.Origin != "o" {
			t.Fatalf("opened %q as %+v", b, c)
		}
	})
}
