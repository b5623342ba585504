package checkpoint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"

	"github.com/securelog/securelog/pkg/keystore"
)

// ErrDoesNotVerify is returned by VerifySignature when the key is usable but
// the signature is not a valid signature of the message (SPEC §8.4 "does not
// verify"; the log maps it to chain-broken).
var ErrDoesNotVerify = errors.New("signature does not verify")

// BadKeyError reports a public key that cannot be used with its algorithm
// (wrong length, not on the curve, not PKCS#1 DER, ...). The log maps it to
// invalid("verify failed: …").
type BadKeyError struct {
	Algorithm string
	Reason    string
}

func (e *BadKeyError) Error() string {
	return fmt.Sprintf("bad %s public key: %s", e.Algorithm, e.Reason)
}

// UnsupportedAlgorithmError reports an algorithm id that is not one of
// ed25519, ecdsa-p256, rsa-pss-sha256 (exact, case-sensitive).
type UnsupportedAlgorithmError struct{ Algorithm string }

func (e *UnsupportedAlgorithmError) Error() string {
	return fmt.Sprintf("unsupported algorithm '%s'", e.Algorithm)
}

// PSSSaltLength is the exact RSASSA-PSS salt length of rsa-pss-sha256.
const PSSSaltLength = 32

// MinRSABits is the smallest RSA modulus accepted (Go's crypto/rsa refuses
// smaller keys).
const MinRSABits = 1024

// ParsePublicKey decodes a public key in the encoding of SPEC §8.4 for alg:
// ed25519 → ed25519.PublicKey (32 bytes, a valid curve point); ecdsa-p256 →
// *ecdsa.PublicKey (SEC1 compressed or uncompressed); rsa-pss-sha256 →
// *rsa.PublicKey (PKCS#1 RSAPublicKey DER). Errors are *BadKeyError or
// *UnsupportedAlgorithmError.
func ParsePublicKey(alg string, pub []byte) (crypto.PublicKey, error) {
	switch alg {
	case keystore.Ed25519:
		if len(pub) != ed25519.PublicKeySize {
			return nil, &BadKeyError{alg, fmt.Sprintf("length %d, want 32 bytes", len(pub))}
		}
		if !ed25519PointValid(pub) {
			return nil, &BadKeyError{alg, fmt.Sprintf("%x is not a valid curve point", pub)}
		}
		return ed25519.PublicKey(append([]byte(nil), pub...)), nil
	case keystore.ECDSAP256:
		return parseP256(pub)
	case keystore.RSAPSSSHA256:
		k, err := x509.ParsePKCS1PublicKey(pub)
		if err != nil {
			return nil, &BadKeyError{alg, "not a PKCS#1 RSAPublicKey: " + err.Error()}
		}
		if k.N.BitLen() < MinRSABits {
			return nil, &BadKeyError{alg, fmt.Sprintf("modulus of %d bits is below the %d-bit minimum", k.N.BitLen(), MinRSABits)}
		}
		if k.E < 3 || k.E%2 == 0 {
			return nil, &BadKeyError{alg, fmt.Sprintf("public exponent %d is not an odd number ≥ 3", k.E)}
		}
		return k, nil
	}
	return nil, &UnsupportedAlgorithmError{Algorithm: alg}
}

func parseP256(pub []byte) (*ecdsa.PublicKey, error) {
	const alg = keystore.ECDSAP256
	switch {
	case len(pub) == 65 && pub[0] == 4:
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
		if err != nil {
			return nil, &BadKeyError{alg, "invalid uncompressed SEC1 point: " + err.Error()}
		}
		return k, nil
	case len(pub) == 33 && (pub[0] == 2 || pub[0] == 3):
		x, y := elliptic.UnmarshalCompressed(elliptic.P256(), pub)
		if x == nil {
			return nil, &BadKeyError{alg, "invalid compressed SEC1 point"}
		}
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, nil
	}
	prefix := -1
	if len(pub) > 0 {
		prefix = int(pub[0])
	}
	return nil, &BadKeyError{alg, fmt.Sprintf("SEC1 point of %d bytes with prefix %d; want 65 bytes 0x04‖X‖Y or 33 bytes 0x02/0x03‖X", len(pub), prefix)}
}

// VerifySignature checks sig over msg with the public key pub of algorithm alg,
// exactly as SPEC §8.4:
//   - ed25519: pub 32 bytes and a valid point; sig must be 64 bytes; PureEdDSA
//     over msg.
//   - ecdsa-p256: pub SEC1 compressed or uncompressed; sig 64 bytes r‖s with
//     r, s in [1, n−1] (high-S accepted); ECDSA over SHA-256(msg).
//   - rsa-pss-sha256: pub PKCS#1 RSAPublicKey DER; sig exactly modulus-length
//     bytes with value < n; RSASSA-PSS, SHA-256, MGF1-SHA256, salt length 32.
//
// It returns nil, ErrDoesNotVerify, *BadKeyError or
// *UnsupportedAlgorithmError.
func VerifySignature(alg string, pub, msg, sig []byte) error {
	if alg == keystore.Ed25519 && len(pub) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
		ed25519.Verify(pub, msg, sig) {
		// Fast path: a key that verifies a signature is a valid point, so the
		// (slower) point check is needed only to classify failures.
		return nil
	}
	k, err := ParsePublicKey(alg, pub)
	if err != nil {
		return err
	}
	return verifyParsed(k, msg, sig)
}

// verifyParsed verifies with a key returned by ParsePublicKey.
func verifyParsed(key crypto.PublicKey, msg, sig []byte) error {
	switch k := key.(type) {
	case ed25519.PublicKey:
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, msg, sig) {
			return ErrDoesNotVerify
		}
		return nil
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return ErrDoesNotVerify
		}
		n := k.Curve.Params().N
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
			return ErrDoesNotVerify
		}
		digest := sha256.Sum256(msg)
		if !ecdsa.Verify(k, digest[:], r, s) {
			return ErrDoesNotVerify
		}
		return nil
	case *rsa.PublicKey:
		if len(sig) != k.Size() || new(big.Int).SetBytes(sig).Cmp(k.N) >= 0 {
			return ErrDoesNotVerify
		}
		digest := sha256.Sum256(msg)
		opts := &rsa.PSSOptions{SaltLength: PSSSaltLength, Hash: crypto.SHA256}
		if rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, opts) != nil {
			return ErrDoesNotVerify
		}
		return nil
	}
	return fmt.Errorf("checkpoint: unexpected public key type %T", key)
}

// Curve25519 constants for the point check: p = 2^255 − 19 and
// d = −121665/121666 mod p.
var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	edD = func() *big.Int {
		inv := new(big.Int).ModInverse(big.NewInt(121666), edP)
		d := new(big.Int).Mul(big.NewInt(-121665), inv)
		return d.Mod(d, edP)
	}()
)

// ed25519PointValid reports whether the 32-byte encoding decodes to a point
// of the Edwards curve, with the same rules as Go's crypto/ed25519 (and the
// reference's verifier): the sign bit is dropped, y is reduced mod p
// (non-canonical encodings are accepted), and the point is valid iff
// x² = (y² − 1)/(d·y² + 1) has a square root.
func ed25519PointValid(enc []byte) bool {
	le := make([]byte, 32)
	for i := range 32 {
		le[31-i] = enc[i]
	}
	le[0] &= 0x7f // drop the sign bit of x (now the most significant byte)
	y := new(big.Int).SetBytes(le)
	y.Mod(y, edP)
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, edP)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	u.Mod(u, edP)
	v := new(big.Int).Mul(edD, y2)
	v.Add(v, big.NewInt(1))
	v.Mod(v, edP)
	vInv := new(big.Int).ModInverse(v, edP)
	if vInv == nil {
		return false
	}
	x2 := u.Mul(u, vInv)
	x2.Mod(x2, edP)
	if x2.Sign() == 0 {
		return true
	}
	return big.Jacobi(x2, edP) == 1
}
