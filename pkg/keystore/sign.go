package keystore

import (
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
	"fmt"
	"math/big"
)

// PSSSaltLength is the RSASSA-PSS salt length of rsa-pss-sha256 (SPEC §8.4).
const PSSSaltLength = 32

// Sign signs msg with priv and returns the signature encoding of SPEC §8.4 for
// alg: ed25519 → 64 raw bytes (PureEdDSA over msg); ecdsa-p256 → 64 bytes r‖s
// over SHA-256(msg); rsa-pss-sha256 → modulus-length bytes, RSASSA-PSS over
// SHA-256(msg) with MGF1-SHA256 and a 32-byte salt. priv may be any
// crypto.Signer (a Go private key or a hardware-backed signer) whose public
// key matches alg.
func Sign(alg string, priv crypto.Signer, msg []byte) ([]byte, error) {
	pubAlg, _, err := EncodePublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	if _, err := ParseAlgorithm(alg); err != nil {
		return nil, err
	}
	if pubAlg != alg {
		return nil, fmt.Errorf("sign: key is %s, not %s", pubAlg, alg)
	}
	switch alg {
	case Ed25519:
		sig, err := priv.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("ed25519 sign: %w", err)
		}
		if len(sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("ed25519 sign: signer returned %d bytes, want 64", len(sig))
		}
		return sig, nil
	case ECDSAP256:
		digest := sha256.Sum256(msg)
		der, err := priv.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("ecdsa-p256 sign: %w", err)
		}
		return ECDSADERToRS(der)
	default: // RSAPSSSHA256
		digest := sha256.Sum256(msg)
		sig, err := priv.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: PSSSaltLength, Hash: crypto.SHA256})
		if err != nil {
			return nil, fmt.Errorf("rsa-pss-sha256 sign: %w", err)
		}
		return sig, nil
	}
}

// ECDSADERToRS converts an ASN.1 DER ECDSA-Sig-Value (SEQUENCE { r INTEGER,
// s INTEGER }) of a P-256 signature into the fixed 64-byte r‖s encoding of
// SPEC §8.4 (each a 32-byte big-endian integer). It rejects trailing data,
// non-positive values and values wider than 32 bytes.
func ECDSADERToRS(der []byte) ([]byte, error) {
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil {
		return nil, fmt.Errorf("ecdsa signature: not DER: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("ecdsa signature: %d bytes of trailing data after DER", len(rest))
	}
	out := make([]byte, 64)
	for i, x := range []*big.Int{v.R, v.S} {
		if x.Sign() <= 0 || x.BitLen() > 256 {
			return nil, fmt.Errorf("ecdsa signature: component %d out of range (%d bits, sign %d)", i, x.BitLen(), x.Sign())
		}
		x.FillBytes(out[32*i : 32*i+32])
	}
	return out, nil
}

// EncodePublicKey returns the algorithm id and SPEC §8.4 encoding of a public
// key: ed25519.PublicKey → 32 raw bytes; *ecdsa.PublicKey on P-256 → SEC1
// uncompressed 65 bytes; *rsa.PublicKey → PKCS#1 RSAPublicKey DER. Other key
// types give *UnsupportedAlgorithmError.
func EncodePublicKey(pub crypto.PublicKey) (alg string, enc []byte, err error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", nil, fmt.Errorf("ed25519 public key of %d bytes", len(k))
		}
		return Ed25519, append([]byte(nil), k...), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", nil, &UnsupportedAlgorithmError{Algorithm: "ecdsa-" + k.Curve.Params().Name}
		}
		b, err := k.Bytes()
		if err != nil {
			return "", nil, fmt.Errorf("encode ecdsa-p256 public key: %w", err)
		}
		return ECDSAP256, b, nil
	case *rsa.PublicKey:
		if k.N == nil {
			return "", nil, errors.New("encode rsa public key: nil modulus")
		}
		return RSAPSSSHA256, x509.MarshalPKCS1PublicKey(k), nil
	}
	return "", nil, &UnsupportedAlgorithmError{Algorithm: fmt.Sprintf("%T", pub)}
}

// signerKey is a Key backed by an in-process crypto.Signer.
type signerKey struct {
	alg  string
	pub  []byte
	priv crypto.Signer
}

func (k *signerKey) Algorithm() string { return k.alg }
func (k *signerKey) PublicKey() []byte { return append([]byte(nil), k.pub...) }
func (k *signerKey) Sign(msg []byte) ([]byte, error) {
	return Sign(k.alg, k.priv, msg)
}

// KeyFromSigner wraps a crypto.Signer (ed25519, P-256 ECDSA or RSA) as a Key
// whose algorithm follows from the public key and whose Sign produces the
// SPEC §8.4 encodings (see Sign).
func KeyFromSigner(priv crypto.Signer) (Key, error) {
	alg, pub, err := EncodePublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	return &signerKey{alg: alg, pub: pub, priv: priv}, nil
}
