package keystore

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/big"
	"testing"

	"github.com/securelog/securelog/internal/vectors"
)

type ksVectors struct {
	ECDSA struct {
		Label     string `json:"label"`
		Keystream string `json:"chacha20_keystream_first64_hex"`
		Scalar    string `json:"private_scalar_hex"`
		Pub       string `json:"public_key_sec1_uncompressed_hex"`
		Seed      string `json:"seed_hex"`
		Sig       string `json:"signature_rfc6979_r_s_hex"`
		Msg       string `json:"signed_message_hex"`
	} `json:"ecdsa_p256_label_attest"`
	Ed struct {
		Label string `json:"label"`
		Pub   string `json:"public_key_hex"`
		Seed  string `json:"seed_hex"`
		Sig   string `json:"signature_over_checkpoint_segment1_hex"`
	} `json:"ed25519_label_attest"`
	RSASalt string `json:"rsa_pss_salt_for_label_attest_hex"`
}

type sigVectors struct {
	Fixed struct {
		Pub  string `json:"public_key_hex"`
		Seed string `json:"seed_hex"`
		Sig  string `json:"signature_hex"`
	} `json:"ed25519_fixed_seed"`
	Msg string `json:"message_hex"`
}

func loadVectors(t *testing.T) (ksVectors, sigVectors) {
	t.Helper()
	var ks ksVectors
	var sv sigVectors
	vectors.Section(t, "keystore_software", &ks)
	vectors.Section(t, "signatures", &sv)
	return ks, sv
}

func newLabelDerived(t *testing.T, alg string) *LabelDerived {
	t.Helper()
	l, err := NewInsecureLabelDerived(alg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func hexEq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Fatalf("%s: got %x want %s", what, got, want)
	}
}

func TestVectorEd25519Label(t *testing.T) {
	ks, sv := loadVectors(t)
	v := ks.Ed
	hexEq(t, "seed", labelSeed(Ed25519, v.Label), v.Seed)
	k, err := newLabelDerived(t, Ed25519).GetKey(context.Background(), v.Label)
	if err != nil {
		t.Fatal(err)
	}
	if k.Algorithm() != Ed25519 {
		t.Fatalf("algorithm %s", k.Algorithm())
	}
	hexEq(t, "public key", k.PublicKey(), v.Pub)
	sig, err := k.Sign(vectors.Hex(t, sv.Msg))
	if err != nil {
		t.Fatal(err)
	}
	hexEq(t, "signature", sig, v.Sig)
}

func TestVectorEd25519FixedSeed(t *testing.T) {
	_, sv := loadVectors(t)
	priv := ed25519.NewKeyFromSeed(vectors.Hex(t, sv.Fixed.Seed))
	alg, pub, err := EncodePublicKey(priv.Public())
	if err != nil || alg != Ed25519 {
		t.Fatalf("%s %v", alg, err)
	}
	hexEq(t, "public key", pub, sv.Fixed.Pub)
	sig, err := Sign(Ed25519, priv, vectors.Hex(t, sv.Msg))
	if err != nil {
		t.Fatal(err)
	}
	hexEq(t, "signature", sig, sv.Fixed.Sig)
}

func TestVectorECDSALabel(t *testing.T) {
	ks, sv := loadVectors(t)
	v := ks.ECDSA
	seed := labelSeed(ECDSAP256, v.Label)
	hexEq(t, "seed", seed, v.Seed)
	stream := make([]byte, 64)
	if _, err := io.ReadFull(newKeystream(seed), stream); err != nil {
		t.Fatal(err)
	}
	hexEq(t, "keystream", stream, v.Keystream)
	priv, err := p256FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	hexEq(t, "scalar", priv.D.FillBytes(make([]byte, 32)), v.Scalar)
	k, err := newLabelDerived(t, ECDSAP256).GetKey(context.Background(), v.Label)
	if err != nil {
		t.Fatal(err)
	}
	hexEq(t, "public key", k.PublicKey(), v.Pub)
	if v.Msg != sv.Msg {
		t.Fatal("ecdsa vector message differs from the checkpoint hash")
	}
	sig, err := k.Sign(vectors.Hex(t, v.Msg))
	if err != nil {
		t.Fatal(err)
	}
	hexEq(t, "RFC 6979 signature", sig, v.Sig)
}

func TestVectorRSASalt(t *testing.T) {
	ks, _ := loadVectors(t)
	hexEq(t, "salt", rsaPSSSalt("attest"), ks.RSASalt)
}

// TestLabelDerivedRSA checks that the deterministic RSA-PSS signature is a
// valid PSS signature (crypto/rsa verifies it with salt length 32), that it
// really carries the per-label salt, and that key and signature are stable.
func TestLabelDerivedRSA(t *testing.T) {
	ks, _ := loadVectors(t)
	l := newLabelDerived(t, RSAPSSSHA256)
	k, err := l.GetKey(context.Background(), "attest")
	if err != nil {
		t.Fatal(err)
	}
	rk := k.(*deterministicRSAKey)
	if rk.priv.N.BitLen() != 2048 || rk.priv.E != 65537 {
		t.Fatalf("key %d bits e=%d", rk.priv.N.BitLen(), rk.priv.E)
	}
	msg := []byte("checkpoint hash")
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(msg)
	if err := rsa.VerifyPSS(&rk.priv.PublicKey, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
		t.Fatalf("crypto/rsa rejects the signature: %v", err)
	}
	// Recover the salt: EM = sig^e mod n, unmask DB, salt = last 32 bytes.
	em := new(big.Int).Exp(new(big.Int).SetBytes(sig), big.NewInt(65537), rk.priv.N).FillBytes(make([]byte, 256))
	db := bytes.Clone(em[:256-33])
	mgf1XOR(db, em[256-33:256-1])
	hexEq(t, "salt inside the signature", db[len(db)-32:], ks.RSASalt)

	again, _ := k.Sign(msg)
	if !bytes.Equal(again, sig) {
		t.Fatal("RSA signature not deterministic")
	}
	// A second keystore instance derives the same key.
	k2, err := newLabelDerived(t, RSAPSSSHA256).GetKey(context.Background(), "attest")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k2.PublicKey(), k.PublicKey()) {
		t.Fatal("RSA key not reproducible from the label")
	}
	if k3, _ := l.GetKey(context.Background(), "other"); bytes.Equal(k3.PublicKey(), k.PublicKey()) {
		t.Fatal("different labels gave the same key")
	}
}

func TestEMSAPSSEncodeLayout(t *testing.T) {
	mHash := bytes.Repeat([]byte{1}, 32)
	salt := bytes.Repeat([]byte{2}, 32)
	em, err := emsaPSSEncode(mHash, 2047, salt)
	if err != nil {
		t.Fatal(err)
	}
	if len(em) != 256 || em[255] != 0xbc || em[0]&0x80 != 0 {
		t.Fatalf("bad layout: len %d last %x first %x", len(em), em[255], em[0])
	}
	if _, err := emsaPSSEncode(mHash, 500, salt); err == nil {
		t.Fatal("too-small modulus accepted")
	}
}

func TestNewInsecureLabelDerivedRejectsUnknown(t *testing.T) {
	if _, err := NewInsecureLabelDerived("ed448"); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
}
