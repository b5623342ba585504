package pkcs11

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
)

func TestAlgorithmFor(t *testing.T) {
	const ckkRSA, ckkDSA, ckkEC = 0x0, 0x1, 0x3 // PKCS#11 CKK_* values
	p384 := []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}
	ed448OID := []byte{0x06, 0x03, 0x2b, 0x65, 0x71}
	for _, tc := range []struct {
		name        string
		keyType     uint
		params      []byte
		want        string
		unsupported bool
	}{
		{"ed25519 oid", ckkECEdwards, ecParamsEd25519OID, keystore.Ed25519, false},
		{"ed25519 printable", ckkECEdwards, ecParamsEd25519Name, keystore.Ed25519, false},
		{"ed448", ckkECEdwards, ed448OID, "", true},
		{"p256", ckkEC, ecParamsP256, keystore.ECDSAP256, false},
		{"p384", ckkEC, p384, "", true},
		{"ec no params", ckkEC, nil, "", true},
		{"rsa", ckkRSA, nil, keystore.RSAPSSSHA256, false},
		{"dsa", ckkDSA, nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := algorithmFor(tc.keyType, tc.params)
			var ua *keystore.UnsupportedAlgorithmError
			if tc.unsupported {
				if !errors.As(err, &ua) {
					t.Fatalf("err = %v, want UnsupportedAlgorithmError", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("algorithmFor = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestPublicKeyFromECPoint(t *testing.T) {
	ec, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256 := ec.PublicKey().Bytes()
	ed := bytes.Repeat([]byte{0x42}, 32)
	der := func(b []byte) []byte {
		out, err := asn1.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	offCurve := bytes.Clone(p256)
	offCurve[64] ^= 1
	for _, tc := range []struct {
		name  string
		alg   string
		point []byte
		want  []byte
	}{
		{"p256 der", keystore.ECDSAP256, der(p256), p256},
		{"p256 raw", keystore.ECDSAP256, p256, p256},
		{"ed25519 der", keystore.Ed25519, der(ed), ed},
		{"ed25519 raw", keystore.Ed25519, ed, ed},
		{"p256 off curve", keystore.ECDSAP256, der(offCurve), nil},
		{"p256 compressed", keystore.ECDSAP256, der(append([]byte{0x02}, p256[1:33]...)), nil},
		{"ed25519 short", keystore.Ed25519, der(ed[:31]), nil},
		{"trailing bytes", keystore.Ed25519, append(der(ed), 0), nil},
		{"rsa", keystore.RSAPSSSHA256, der(ed), nil},
		{"empty", keystore.Ed25519, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := publicKeyFromECPoint(tc.alg, tc.point)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted %x as %s: %x", tc.point, tc.alg, got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, %v; want %x", got, err, tc.want)
			}
		})
	}
}

func FuzzPublicKeyFromECPoint(f *testing.F) {
	f.Add(true, append([]byte{0x04, 0x20}, bytes.Repeat([]byte{7}, 32)...))
	f.Add(false, append([]byte{0x04, 0x41, 0x04}, bytes.Repeat([]byte{7}, 64)...))
	f.Add(false, []byte{0x04, 0x00})
	f.Fuzz(func(t *testing.T, ed bool, point []byte) {
		alg := keystore.ECDSAP256
		if ed {
			alg = keystore.Ed25519
		}
		pub, err := publicKeyFromECPoint(alg, point)
		if err != nil {
			return
		}
		want := 65
		if ed {
			want = 32
		}
		if len(pub) != want {
			t.Fatalf("%s public key of %d bytes from %x", alg, len(pub), point)
		}
		if !ed {
			if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
				t.Fatalf("invalid P-256 point accepted: %x", pub)
			}
		}
	})
}

func TestRSAPublicKeyDER(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := big.NewInt(int64(priv.E)).Bytes()
	der, err := rsaPublicKeyDER(priv.N.Bytes(), e)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.ParsePKCS1PublicKey(der)
	if err != nil || !pk.Equal(&priv.PublicKey) {
		t.Fatalf("round trip: %v", err)
	}
	// Leading zero bytes (some tokens pad CKA_MODULUS) do not change the key.
	if der2, err := rsaPublicKeyDER(append([]byte{0}, priv.N.Bytes()...), append([]byte{0, 0}, e...)); err != nil || !bytes.Equal(der, der2) {
		t.Fatalf("zero-padded modulus: %x, %v", der2, err)
	}
	for _, tc := range []struct {
		name string
		n, e []byte
	}{
		{"1024-bit", priv.N.Bytes()[:128], e},
		{"even e", priv.N.Bytes(), []byte{0x01, 0x00, 0x00}},
		{"e=1", priv.N.Bytes(), []byte{1}},
		{"huge e", priv.N.Bytes(), bytes.Repeat([]byte{0xff}, 9)},
	} {
		if _, err := rsaPublicKeyDER(tc.n, tc.e); err == nil {
			t.Errorf("%s accepted", tc.name)
		}
	}
}
