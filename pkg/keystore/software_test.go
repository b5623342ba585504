package keystore_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
)

var msg = bytes.Repeat([]byte{0x5a}, 32)

// shared holds one software keystore with one key per algorithm, because RSA
// generation is slow.
var shared struct {
	once sync.Once
	dir  string
	ks   *keystore.Software
	keys map[string]keystore.Key
	err  error
}

func sharedKeys(t testing.TB) (*keystore.Software, map[string]keystore.Key) {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "keystore-test-*")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = filepath.Join(dir, "keys")
		shared.ks, shared.err = keystore.OpenSoftware(shared.dir)
		if shared.err != nil {
			return
		}
		shared.keys = map[string]keystore.Key{}
		for _, alg := range keystore.Algorithms {
			k, err := shared.ks.Generate("id-"+alg, alg)
			if err != nil {
				shared.err = err
				return
			}
			shared.keys[alg] = k
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.ks, shared.keys
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(filepath.Dir(shared.dir))
	}
	os.Exit(code)
}

func TestSoftwareRoundTrip(t *testing.T) {
	ks, keys := sharedKeys(t)
	for _, alg := range keystore.Algorithms {
		t.Run(alg, func(t *testing.T) {
			k := keys[alg]
			if k.Algorithm() != alg {
				t.Fatalf("algorithm %s", k.Algorithm())
			}
			sig, err := k.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkpoint.VerifySignature(alg, k.PublicKey(), msg, sig); err != nil {
				t.Fatalf("verify: %v", err)
			}
			tampered := bytes.Clone(msg)
			tampered[31] ^= 1
			if err := checkpoint.VerifySignature(alg, k.PublicKey(), tampered, sig); !errors.Is(err, checkpoint.ErrDoesNotVerify) {
				t.Fatalf("tampered message: %v", err)
			}
			// The key of another identity with the same algorithm must not verify.
			other, err := ks.GetKeyOrCreate(context.Background(), "other-"+alg, alg)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkpoint.VerifySignature(alg, other.PublicKey(), msg, sig); !errors.Is(err, checkpoint.ErrDoesNotVerify) {
				t.Fatalf("wrong key: %v", err)
			}
			// A fresh keystore on the same directory loads the same key.
			ks2, err := keystore.OpenSoftware(ks.Dir())
			if err != nil {
				t.Fatal(err)
			}
			k2, err := ks2.GetKey(context.Background(), "id-"+alg)
			if err != nil {
				t.Fatal(err)
			}
			if k2.Algorithm() != alg || !bytes.Equal(k2.PublicKey(), k.PublicKey()) {
				t.Fatal("reloaded key differs")
			}
			sig2, err := k2.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkpoint.VerifySignature(alg, k.PublicKey(), msg, sig2); err != nil {
				t.Fatalf("reloaded key's signature: %v", err)
			}
		})
	}
}

func TestSoftwareFilesAndErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "keys")
	ks, err := keystore.OpenSoftware(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v %v", st.Mode().Perm(), err)
	}
	k, err := ks.Generate("attest", keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "attest.pem" {
		t.Fatalf("directory holds %v", ents)
	}
	fst, _ := os.Stat(filepath.Join(dir, "attest.pem"))
	if fst.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fst.Mode().Perm())
	}
	before, _ := os.ReadFile(filepath.Join(dir, "attest.pem"))

	var exists *keystore.KeyExistsError
	if _, err := ks.Generate("attest", keystore.ECDSAP256); !errors.As(err, &exists) || exists.Identity != "attest" {
		t.Fatalf("overwrite: %v", err)
	}
	// A second instance on the same directory must refuse too.
	ks2, _ := keystore.OpenSoftware(dir)
	if _, err := ks2.Generate("attest", keystore.Ed25519); !errors.As(err, &exists) {
		t.Fatalf("overwrite from second instance: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "attest.pem"))
	if !bytes.Equal(before, after) {
		t.Fatal("key file changed")
	}

	var nf *keystore.KeyNotFoundError
	if _, err := ks.GetKey(context.Background(), "nobody"); !errors.As(err, &nf) || nf.Identity != "nobody" {
		t.Fatalf("unknown identity: %v", err)
	}
	var ua *keystore.UnsupportedAlgorithmError
	if _, err := ks.Generate("x", "ed448"); !errors.As(err, &ua) {
		t.Fatalf("unknown alg: %v", err)
	}
	for _, id := range []string{"", "a/b", `a\b`, "a\x00b", "..", "../x", "a..b", ".", "tab\tid", strings.Repeat("x", 201)} {
		var bad *keystore.InvalidIdentityError
		_, err := ks.Generate(id, keystore.Ed25519)
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(id, `\`, `\\`), "\x00", `\x00`), "\t", `\t`)) {
			t.Errorf("identity %q: %v", id, err)
		}
		if _, err := ks.GetKey(context.Background(), id); !errors.As(err, &bad) {
			t.Errorf("GetKey(%q): %v", id, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("stray files: %v", ents)
	}

	// GetKeyOrCreate: existing key returned as is; missing key created.
	got, err := ks.GetKeyOrCreate(context.Background(), "attest", keystore.ECDSAP256)
	if err != nil || got.Algorithm() != keystore.Ed25519 || !bytes.Equal(got.PublicKey(), k.PublicKey()) {
		t.Fatalf("existing: %v %v", got, err)
	}
	nk, err := ks.GetKeyOrCreate(context.Background(), "new", keystore.ECDSAP256)
	if err != nil || nk.Algorithm() != keystore.ECDSAP256 {
		t.Fatalf("create: %v", err)
	}
	if len(nk.PublicKey()) != 65 || nk.PublicKey()[0] != 4 {
		t.Fatalf("ecdsa public key not uncompressed SEC1: %x", nk.PublicKey())
	}
	// Junk files are ignored by List; list is sorted.
	os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o600)
	list, err := ks.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Identity != "attest" || list[1].Identity != "new" ||
		list[1].Algorithm != keystore.ECDSAP256 || !bytes.Equal(list[0].PublicKey, k.PublicKey()) {
		t.Fatalf("list: %+v", list)
	}
	// A corrupted key file is a backend error naming the file.
	os.WriteFile(filepath.Join(dir, "broken.pem"), []byte("not pem"), 0o600)
	var be *keystore.BackendError
	if _, err := ks.GetKey(context.Background(), "broken"); !errors.As(err, &be) || !strings.Contains(err.Error(), "broken.pem") {
		t.Fatalf("corrupt file: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ks.GetKey(ctx, "attest"); err == nil {
		t.Fatal("cancelled context ignored")
	}
}

func TestOpenSoftwareOnFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := keystore.OpenSoftware(f); err == nil {
		t.Fatal("opened a file as key directory")
	}
}

// TestParseAlgorithmExact: only the exact spellings are accepted (SPEC
// §9.3); the CLI applies it to SECURELOG_KEYSTORE_ALG.
func TestParseAlgorithmExact(t *testing.T) {
	for _, c := range []struct {
		val, want string
	}{
		{"ed25519", keystore.Ed25519}, {"ecdsa-p256", keystore.ECDSAP256}, {"rsa-pss-sha256", keystore.RSAPSSSHA256},
		{"", ""}, {"ED25519", ""}, {" ed25519", ""},
	} {
		got, err := keystore.ParseAlgorithm(c.val)
		if c.want == "" {
			var ua *keystore.UnsupportedAlgorithmError
			if !errors.As(err, &ua) || ua.Algorithm != c.val {
				t.Errorf("%q: got %q %v", c.val, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q %v", c.val, got, err)
		}
	}
}

func TestECDSAHighSAccepted(t *testing.T) {
	_, keys := sharedKeys(t)
	k := keys[keystore.ECDSAP256]
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	flipped := append(bytes.Clone(sig[:32]), new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))...)
	if err := checkpoint.VerifySignature(keystore.ECDSAP256, k.PublicKey(), msg, flipped); err != nil {
		t.Fatalf("S ↔ n−S signature rejected: %v", err)
	}
}

func TestRSAWrongSaltLengthRejected(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := x509.MarshalPKCS1PublicKey(&priv.PublicKey)
	d := sha256.Sum256(msg)
	for _, salt := range []int{0 /* auto/max */, 20, 31, 33} {
		opts := &rsa.PSSOptions{SaltLength: salt, Hash: crypto.SHA256}
		if salt == 0 {
			opts.SaltLength = rsa.PSSSaltLengthAuto
		}
		sig, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, d[:], opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.VerifySignature(keystore.RSAPSSSHA256, pub, msg, sig); !errors.Is(err, checkpoint.ErrDoesNotVerify) {
			t.Errorf("salt %d: %v", salt, err)
		}
	}
	sig, err := keystore.Sign(keystore.RSAPSSSHA256, priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.VerifySignature(keystore.RSAPSSSHA256, pub, msg, sig); err != nil {
		t.Fatalf("Sign's salt-32 signature rejected: %v", err)
	}
}

func TestSignHelper(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := keystore.Sign(keystore.ECDSAP256, edPriv, msg); err == nil {
		t.Fatal("algorithm/key mismatch accepted")
	}
	var ua *keystore.UnsupportedAlgorithmError
	if _, err := keystore.Sign("dsa", edPriv, msg); !errors.As(err, &ua) {
		t.Fatalf("unknown alg: %v", err)
	}
	if _, err := keystore.Sign(keystore.ECDSAP256, p384, msg); !errors.As(err, &ua) {
		t.Fatalf("P-384: %v", err)
	}
	for i := range 20 {
		sig, err := keystore.Sign(keystore.ECDSAP256, ecPriv, msg)
		if err != nil || len(sig) != 64 {
			t.Fatalf("%d: %x %v", i, sig, err)
		}
		pub, _ := ecPriv.PublicKey.Bytes()
		if err := checkpoint.VerifySignature(keystore.ECDSAP256, pub, msg, sig); err != nil {
			t.Fatal(err)
		}
	}
}

func TestECDSADERToRS(t *testing.T) {
	der := func(r, s *big.Int) []byte {
		b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	one := big.NewInt(1)
	max := new(big.Int).Sub(new(big.Int).Lsh(one, 256), one)
	got, err := keystore.ECDSADERToRS(der(one, max))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(make([]byte, 31), 1), bytes.Repeat([]byte{0xff}, 32)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x", got)
	}
	bad := map[string][]byte{
		"zero r":   der(big.NewInt(0), one),
		"negative": der(big.NewInt(-1), one),
		"too wide": der(new(big.Int).Lsh(one, 256), one),
		"trailing": append(der(one, one), 0),
		"not DER":  {1, 2, 3},
		"raw r||s": want,
		"empty":    nil,
	}
	for name, b := range bad {
		if _, err := keystore.ECDSADERToRS(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestLabelDerivedVerifies(t *testing.T) {
	for _, alg := range keystore.Algorithms {
		t.Run(alg, func(t *testing.T) {
			l, err := keystore.NewInsecureLabelDerived(alg)
			if err != nil {
				t.Fatal(err)
			}
			k, err := l.GetKey(context.Background(), "dev")
			if err != nil {
				t.Fatal(err)
			}
			sig, err := k.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkpoint.VerifySignature(alg, k.PublicKey(), msg, sig); err != nil {
				t.Fatal(err)
			}
			sig2, _ := k.Sign(msg)
			if !bytes.Equal(sig, sig2) {
				t.Fatal("label-derived signatures must be deterministic")
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	_, keys := sharedKeys(b)
	for _, alg := range keystore.Algorithms {
		b.Run(alg, func(b *testing.B) {
			k := keys[alg]
			for b.Loop() {
				if _, err := k.Sign(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	_, keys := sharedKeys(b)
	for _, alg := range keystore.Algorithms {
		b.Run(alg, func(b *testing.B) {
			k := keys[alg]
			sig, err := k.Sign(msg)
			if err != nil {
				b.Fatal(err)
			}
			pub := k.PublicKey()
			for b.Loop() {
				if err := checkpoint.VerifySignature(alg, pub, msg, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
