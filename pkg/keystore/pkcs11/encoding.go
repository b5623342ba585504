package pkcs11

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/securelog/securelog/pkg/keystore"
)

// Constants missing from github.com/miekg/pkcs11 v1.1.2 (PKCS#11 v3.0).
const (
	ckkECEdwards           = 0x40   // CKK_EC_EDWARDS
	ckmECEdwardsKeyPairGen = 0x1055 // CKM_EC_EDWARDS_KEY_PAIR_GEN
	ckmEdDSA               = 0x1057 // CKM_EDDSA
)

// CKA_EC_PARAMS values this package recognises.
var (
	// ecParamsP256 is the DER OID 1.2.840.10045.3.1.7 (prime256v1).
	ecParamsP256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	// ecParamsEd25519OID is the DER OID 1.3.101.112 (id-Ed25519, RFC 8410).
	ecParamsEd25519OID = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}
	// ecParamsEd25519Name is the DER PrintableString "edwards25519", which
	// pkcs11-tool and older tokens write instead of the OID.
	ecParamsEd25519Name = append([]byte{0x13, 0x0c}, "edwards25519"...)
)

// minRSABits is the smallest RSA modulus this keystore accepts.
const minRSABits = 2048

// algorithmFor maps a private key's CKA_KEY_TYPE (and CKA_EC_PARAMS for EC
// keys) to a keystore algorithm id, or a *keystore.UnsupportedAlgorithmError
// naming what was found.
func algorithmFor(keyType uint, ecParams []byte) (string, error) {
	switch keyType {
	case ckkECEdwards:
		if bytes.Equal(ecParams, ecParamsEd25519OID) || bytes.Equal(ecParams, ecParamsEd25519Name) {
			return keystore.Ed25519, nil
		}
		return "", &keystore.UnsupportedAlgorithmError{Algorithm: "pkcs11 CKK_EC_EDWARDS with EC params " + hex.EncodeToString(ecParams)}
	case 0x03: // CKK_EC
		if bytes.Equal(ecParams, ecParamsP256) {
			return keystore.ECDSAP256, nil
		}
		return "", &keystore.UnsupportedAlgorithmError{Algorithm: "pkcs11 CKK_EC with EC params " + hex.EncodeToString(ecParams)}
	case 0x00: // CKK_RSA
		return keystore.RSAPSSSHA256, nil
	default:
		return "", &keystore.UnsupportedAlgorithmError{Algorithm: fmt.Sprintf("pkcs11 key type 0x%x", keyType)}
	}
}

// publicKeyFromECPoint returns the SPEC §8.4 public key for an ed25519 or
// ecdsa-p256 key from its CKA_EC_POINT. The attribute is a DER OCTET STRING
// around the point (P-256: 04 41 04‖X‖Y; Ed25519: 04 20 ‖32 bytes); the bare
// point, as some tokens return it, is accepted too. The lengths tell the two
// forms apart.
func publicKeyFromECPoint(alg string, point []byte) ([]byte, error) {
	var size int
	switch alg {
	case keystore.Ed25519:
		size = ed25519.PublicKeySize
	case keystore.ECDSAP256:
		size = 65
	default:
		return nil, fmt.Errorf("EC point for non-EC algorithm %q", alg)
	}
	raw := point
	if len(point) != size {
		var inner []byte
		rest, err := asn1.Unmarshal(point, &inner)
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("CKA_EC_POINT of %d bytes is neither a %d-byte point nor a DER OCTET STRING around one", len(point), size)
		}
		raw = inner
	}
	if len(raw) != size {
		return nil, fmt.Errorf("CKA_EC_POINT holds %d bytes, want %d for %s", len(raw), size, alg)
	}
	if alg == keystore.ECDSAP256 {
		if _, err := ecdh.P256().NewPublicKey(raw); err != nil {
			return nil, fmt.Errorf("CKA_EC_POINT is not an uncompressed P-256 point: %w", err)
		}
	}
	return bytes.Clone(raw), nil
}

// rsaPublicKeyDER builds the PKCS#1 RSAPublicKey DER (SPEC §8.4) from
// CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian).
func rsaPublicKeyDER(modulus, exponent []byte) ([]byte, error) {
	n := new(big.Int).SetBytes(modulus)
	if n.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits is below the minimum of %d", n.BitLen(), minRSABits)
	}
	e := new(big.Int).SetBytes(exponent)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, fmt.Errorf("RSA public exponent %s is unsupported (want an odd value in [3, 2^31-1], normally 65537)", e)
	}
	return x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: n, E: int(e.Int64())}), nil
}
