package checkpoint

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/securelog/securelog/internal/vectors"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/wire"
)

type checkpointVector struct {
	CBORHex string `json:"cbor_hex"`
	HashHex string `json:"checkpoint_hash_hex"`
	Name    string `json:"name"`
	Fields  struct {
		Version            uint32 `json:"version"`
		StreamID           string `json:"stream_id"`
		SegmentID          uint64 `json:"segment_id"`
		SeqStart           uint64 `json:"seq_start"`
		SeqEnd             uint64 `json:"seq_end"`
		MerkleRoot         string `json:"merkle_root_hex"`
		LastEntryHash      string `json:"last_entry_hash_hex"`
		PrevCheckpointHash string `json:"prev_checkpoint_hash_hex"`
		BootID             string `json:"boot_id"`
		SessionID          string `json:"session_id"`
		PolicyHash         string `json:"policy_hash_hex"`
		Timestamp          string `json:"timestamp_rfc3339"`
	} `json:"fields"`
}

func TestVectorHash(t *testing.T) {
	var v struct {
		Checkpoints []checkpointVector `json:"checkpoints"`
	}
	vectors.Section(t, "segments_and_checkpoints", &v)
	if len(v.Checkpoints) == 0 {
		t.Fatal("no checkpoint vectors")
	}
	for _, c := range v.Checkpoints {
		t.Run(c.Name, func(t *testing.T) {
			f := c.Fields
			got := Hash(wire.CheckpointFields{
				Version: f.Version, StreamID: f.StreamID, SegmentID: f.SegmentID,
				SeqStart: f.SeqStart, SeqEnd: f.SeqEnd,
				MerkleRoot:         vectors.Hex(t, f.MerkleRoot),
				LastEntryHash:      vectors.Hex(t, f.LastEntryHash),
				PrevCheckpointHash: vectors.Hex(t, f.PrevCheckpointHash),
				BootID:             f.BootID, SessionID: f.SessionID,
				PolicyHash: vectors.Hex(t, f.PolicyHash), Timestamp: f.Timestamp,
			})
			if hex.EncodeToString(got) != c.HashHex {
				t.Fatalf("hash %x, want %s", got, c.HashHex)
			}
		})
	}
}

// TestVectorSignatures verifies every published signature vector.
func TestVectorSignatures(t *testing.T) {
	var sigs struct {
		Fixed struct {
			Pub string `json:"public_key_hex"`
			Sig string `json:"signature_hex"`
		} `json:"ed25519_fixed_seed"`
		Msg string `json:"message_hex"`
	}
	vectors.Section(t, "signatures", &sigs)
	var ks struct {
		Ed struct {
			Pub string `json:"public_key_hex"`
			Sig string `json:"signature_over_checkpoint_segment1_hex"`
		} `json:"ed25519_label_attest"`
		EC struct {
			Pub string `json:"public_key_sec1_uncompressed_hex"`
			Sig string `json:"signature_rfc6979_r_s_hex"`
			Msg string `json:"signed_message_hex"`
		} `json:"ecdsa_p256_label_attest"`
	}
	vectors.Section(t, "keystore_software", &ks)
	msg := vectors.Hex(t, sigs.Msg)
	cases := []struct {
		name, alg string
		pub, sig  []byte
	}{
		{"ed25519_fixed_seed", keystore.Ed25519, vectors.Hex(t, sigs.Fixed.Pub), vectors.Hex(t, sigs.Fixed.Sig)},
		{"ed25519_label_attest", keystore.Ed25519, vectors.Hex(t, ks.Ed.Pub), vectors.Hex(t, ks.Ed.Sig)},
		{"ecdsa_p256_label_attest", keystore.ECDSAP256, vectors.Hex(t, ks.EC.Pub), vectors.Hex(t, ks.EC.Sig)},
	}
	if !bytes.Equal(vectors.Hex(t, ks.EC.Msg), msg) {
		t.Fatal("ecdsa vector signs a different message")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := VerifySignature(c.alg, c.pub, msg, c.sig); err != nil {
				t.Fatalf("vector does not verify: %v", err)
			}
			bad := bytes.Clone(msg)
			bad[0] ^= 1
			if err := VerifySignature(c.alg, c.pub, bad, c.sig); !errors.Is(err, ErrDoesNotVerify) {
				t.Fatalf("tampered message: %v", err)
			}
		})
	}
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func rsSig(t testing.TB, k *ecdsa.PrivateKey, msg []byte) (r, s *big.Int) {
	t.Helper()
	d := sha256.Sum256(msg)
	der, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &v); err != nil {
		t.Fatal(err)
	}
	return v.R, v.S
}

func pad32(x *big.Int) []byte { return x.FillBytes(make([]byte, 32)) }

func TestECDSA(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	uncompressed, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	compressed := elliptic.MarshalCompressed(elliptic.P256(), k.X, k.Y)
	msg := []byte("checkpoint hash goes here.......")
	r, s := rsSig(t, k, msg)
	n := elliptic.P256().Params().N
	highS := new(big.Int).Sub(n, s)
	sig := append(pad32(r), pad32(s)...)
	sigHigh := append(pad32(r), pad32(highS)...)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPub, _ := other.PublicKey.Bytes()
	nBytes := pad32(n)
	cases := []struct {
		name string
		pub  []byte
		sig  []byte
		want error
	}{
		{"uncompressed", uncompressed, sig, nil},
		{"compressed", compressed, sig, nil},
		{"high-S", uncompressed, sigHigh, nil},
		{"wrong key", otherPub, sig, ErrDoesNotVerify},
		{"short sig", uncompressed, sig[:63], ErrDoesNotVerify},
		{"DER sig", uncompressed, mustDER(t, r, s), ErrDoesNotVerify},
		{"r zero", uncompressed, append(make([]byte, 32), pad32(s)...), ErrDoesNotVerify},
		{"s zero", uncompressed, append(pad32(r), make([]byte, 32)...), ErrDoesNotVerify},
		{"r = n", uncompressed, append(bytes.Clone(nBytes), pad32(s)...), ErrDoesNotVerify},
		{"s = n", uncompressed, append(pad32(r), nBytes...), ErrDoesNotVerify},
		{"r = r+n", uncompressed, append(pad32(new(big.Int).Add(r, n).Mod(new(big.Int).Add(r, n), new(big.Int).Lsh(big.NewInt(1), 256))), pad32(s)...), ErrDoesNotVerify},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifySignature(keystore.ECDSAP256, c.pub, msg, c.sig)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("got %v want %v", err, c.want)
			}
		})
	}
	badKeys := map[string][]byte{
		"empty":        nil,
		"infinity":     {0},
		"not on curve": append([]byte{4}, make([]byte, 64)...),
		"bad prefix":   append([]byte{5}, uncompressed[1:]...),
		"bad x":        append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...),
		"hybrid":       append([]byte{6}, uncompressed[1:]...),
		"truncated":    uncompressed[:64],
	}
	for name, pub := range badKeys {
		var bk *BadKeyError
		if err := VerifySignature(keystore.ECDSAP256, pub, msg, sig); !errors.As(err, &bk) {
			t.Errorf("%s: got %v, want *BadKeyError", name, err)
		}
	}
}

func mustDER(t *testing.T, r, s *big.Int) []byte {
	t.Helper()
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRSAPSS(t *testing.T) {
	k := testRSAKey(t)
	pub := x509.MarshalPKCS1PublicKey(&k.PublicKey)
	msg := bytes.Repeat([]byte{0x42}, 32)
	d := sha256.Sum256(msg)
	sign := func(salt int) []byte {
		s, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: salt, Hash: crypto.SHA256})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(32)
	if len(good) != 256 {
		t.Fatalf("signature length %d", len(good))
	}
	nPlus := k.N.FillBytes(make([]byte, 256))
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	cases := []struct {
		name string
		pub  []byte
		sig  []byte
		want error
	}{
		{"salt 32", pub, good, nil},
		{"salt 20", pub, sign(20), ErrDoesNotVerify},
		{"salt 222 (max)", pub, sign(rsa.PSSSaltLengthAuto), ErrDoesNotVerify},
		{"short sig", pub, good[1:], ErrDoesNotVerify},
		{"long sig", pub, append([]byte{0}, good...), ErrDoesNotVerify},
		{"sig = n", pub, nPlus, ErrDoesNotVerify},
		{"tampered", pub, flip(good, 100), ErrDoesNotVerify},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifySignature(keystore.RSAPSSSHA256, c.pub, msg, c.sig)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("got %v want %v", err, c.want)
			}
		})
	}
	small, err := x509.ParsePKCS1PublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	small.N = new(big.Int).Rsh(small.N, 1100)
	for name, bad := range map[string][]byte{
		"SPKI not PKCS#1": spki,
		"garbage":         []byte("nope"),
		"trailing data":   append(bytes.Clone(pub), 0),
		"small modulus":   x509.MarshalPKCS1PublicKey(small),
	} {
		var bk *BadKeyError
		if err := VerifySignature(keystore.RSAPSSSHA256, bad, msg, good); !errors.As(err, &bk) {
			t.Errorf("%s: got %v, want *BadKeyError", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x80
	return c
}

func TestEd25519(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("m")
	sig := ed25519.Sign(priv, msg)
	if err := VerifySignature(keystore.Ed25519, pub, msg, sig); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string][]byte{"short": sig[:63], "long": append(bytes.Clone(sig), 0), "flipped": flip(sig, 5), "empty": nil} {
		if err := VerifySignature(keystore.Ed25519, pub, msg, s); !errors.Is(err, ErrDoesNotVerify) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	var bk *BadKeyError
	if err := VerifySignature(keystore.Ed25519, pub[:31], msg, sig); !errors.As(err, &bk) {
		t.Fatalf("31-byte key: %v", err)
	}
	// y = 2 is not on the curve (x² is not a square mod p).
	invalid := make([]byte, 32)
	invalid[0] = 2
	if ed25519PointValid(invalid) {
		t.Fatal("y=2 should not decode")
	}
	if err := VerifySignature(keystore.Ed25519, invalid, msg, sig); !errors.As(err, &bk) || !strings.Contains(err.Error(), "not a valid curve point") {
		t.Fatalf("invalid point: %v", err)
	}
}

// goRejectsEd25519Key reports whether Go's crypto/ed25519 refuses the public
// key itself: with Ed25519ph options and a wrongly sized message, a usable key
// gets the message-length error, an unusable one fails before it.
func goRejectsEd25519Key(pub []byte) bool {
	err := ed25519.VerifyWithOptions(pub, nil, make([]byte, 64), &ed25519.Options{Hash: crypto.SHA512})
	return err != nil && !strings.Contains(err.Error(), "message hash length")
}

func TestEd25519PointCheckMatchesGo(t *testing.T) {
	// Sanity of the oracle itself.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	if goRejectsEd25519Key(pub) {
		t.Fatal("oracle rejects a genuine key")
	}
	invalid, valid := 0, 0
	buf := make([]byte, 32)
	for i := range 2000 {
		if _, err := rand.Read(buf); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			// Non-canonical y (≥ p) and sign-bit corner cases.
			for j := 1; j < 31; j++ {
				buf[j] = 0xff
			}
			buf[31] = 0x7f | buf[31]&0x80
		}
		mine := ed25519PointValid(buf)
		if mine == goRejectsEd25519Key(buf) {
			t.Fatalf("disagreement on %x: mine valid=%v", buf, mine)
		}
		if mine {
			valid++
		} else {
			invalid++
		}
	}
	if invalid < 500 || valid < 500 {
		t.Fatalf("implausible split valid=%d invalid=%d", valid, invalid)
	}
}

func TestUnsupportedAlgorithm(t *testing.T) {
	for _, alg := range []string{"Ed25519", "", "rsa-pss", "ecdsa-p384"} {
		err := VerifySignature(alg, make([]byte, 32), nil, make([]byte, 64))
		var ua *UnsupportedAlgorithmError
		if !errors.As(err, &ua) || err.Error() != "unsupported algorithm '"+alg+"'" {
			t.Errorf("%q: got %v", alg, err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	msg := bytes.Repeat([]byte{1}, 32)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPub, _ := ecKey.PublicKey.Bytes()
	r, s := rsSig(b, ecKey, msg)
	rk := testRSAKey(b)
	d := sha256.Sum256(msg)
	rsaSig, _ := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: 32})
	cases := []struct {
		alg      string
		pub, sig []byte
	}{
		{keystore.Ed25519, edPub, ed25519.Sign(edPriv, msg)},
		{keystore.ECDSAP256, ecPub, append(pad32(r), pad32(s)...)},
		{keystore.RSAPSSSHA256, x509.MarshalPKCS1PublicKey(&rk.PublicKey), rsaSig},
	}
	for _, c := range cases {
		b.Run(c.alg, func(b *testing.B) {
			for b.Loop() {
				if err := VerifySignature(c.alg, c.pub, msg, c.sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
