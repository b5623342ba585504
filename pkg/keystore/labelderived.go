package keystore

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sync"

	"golang.org/x/crypto/chacha20"
)

// LabelDerived is the reference's development keystore (SPEC §9.2): every
// key is derived deterministically from its label, so anyone who knows a
// label knows the private key. It provides NO security and exists only to
// reproduce the reference's test vectors and for throwaway development
// setups (DECISIONS 4). GetKey never returns key-not-found.
//
// Derivation: seed = SHA-256("secure-log-keystore-software:" ‖ alg ‖ ":" ‖
// label).
//   - ed25519: seed is the RFC 8032 private key seed (matches the reference).
//   - ecdsa-p256: ChaCha20 keystream (key = seed, zero nonce, counter 0) cut
//     into 32-byte big-endian candidates; the first in [1, n−1] is the scalar;
//     signatures are RFC 6979 deterministic (matches the reference).
//   - rsa-pss-sha256: a 2048-bit key (e = 65537) whose primes are searched in
//     a ChaCha20 stream keyed by the seed (see rsaFromSeed). This does NOT
//     reproduce the reference's keys (its prime search is library specific):
//     RSA signatures of the two implementations verify only with their own
//     keystore. The PSS salt is the first 32 bytes of a ChaCha20 keystream
//     keyed by SHA-256("secure-log-keystore-software:rsa-pss-sha256-salt:" ‖
//     label), as in the reference, so signatures are deterministic.
type LabelDerived struct {
	alg   string
	mu    sync.Mutex
	cache map[string]Key
}

var _ Signer = (*LabelDerived)(nil)

// NewInsecureLabelDerived returns the label-derived development keystore for
// alg, logging a loud warning. Do not use it for real logs.
func NewInsecureLabelDerived(alg string) (*LabelDerived, error) {
	if _, err := ParseAlgorithm(alg); err != nil {
		return nil, err
	}
	slog.Warn("INSECURE keystore in use: keys are derived from their labels; anyone who knows a label can forge signatures. Development and test vectors only.",
		"keystore", "label-derived", "algorithm", alg)
	return &LabelDerived{alg: alg, cache: make(map[string]Key)}, nil
}

// Algorithm returns the keystore's algorithm.
func (l *LabelDerived) Algorithm() string { return l.alg }

// GetKey derives (once, then caches) the key of label.
func (l *LabelDerived) GetKey(ctx context.Context, label string) (Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, &BackendError{Msg: "get key", Err: err}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := l.cache[label]; ok {
		return k, nil
	}
	k, err := deriveLabelKey(l.alg, label)
	if err != nil {
		return nil, err
	}
	l.cache[label] = k
	return k, nil
}

func deriveLabelKey(alg, label string) (Key, error) {
	seed := labelSeed(alg, label)
	switch alg {
	case Ed25519:
		return KeyFromSigner(ed25519.NewKeyFromSeed(seed))
	case ECDSAP256:
		priv, err := p256FromSeed(seed)
		if err != nil {
			return nil, &BackendError{Msg: "ecdsa-p256 key derivation", Err: err}
		}
		pub, err := priv.PublicKey.Bytes()
		if err != nil {
			return nil, &BackendError{Msg: "ecdsa-p256 public key encode", Err: err}
		}
		return &deterministicECDSAKey{priv: priv, pub: pub}, nil
	case RSAPSSSHA256:
		priv, err := rsaFromSeed(seed, SoftwareKeyBits)
		if err != nil {
			return nil, &BackendError{Msg: "rsa keygen", Err: err}
		}
		return &deterministicRSAKey{priv: priv, pub: x509.MarshalPKCS1PublicKey(&priv.PublicKey), salt: rsaPSSSalt(label)}, nil
	}
	return nil, &UnsupportedAlgorithmError{Algorithm: alg}
}

// labelSeed is SHA-256("secure-log-keystore-software:" ‖ alg ‖ ":" ‖ label).
func labelSeed(alg, label string) []byte {
	s := sha256.Sum256([]byte("secure-log-keystore-software:" + alg + ":" + label))
	return s[:]
}

// rsaPSSSalt is the first 32 bytes of the ChaCha20 keystream keyed by
// SHA-256("secure-log-keystore-software:rsa-pss-sha256-salt:" ‖ label).
func rsaPSSSalt(label string) []byte {
	key := sha256.Sum256([]byte("secure-log-keystore-software:rsa-pss-sha256-salt:" + label))
	salt := make([]byte, PSSSaltLength)
	if _, err := io.ReadFull(newKeystream(key[:]), salt); err != nil {
		panic("keystore: chacha20 keystream: " + err.Error())
	}
	return salt
}

// keystream reads the ChaCha20 keystream (20 rounds, zero 96-bit nonce, block
// counter from 0); for the first 2^32 blocks this equals the stream of
// rand_chacha's ChaCha20Rng seeded with the same key, which the reference
// uses.
type keystream struct{ c *chacha20.Cipher }

func newKeystream(key []byte) io.Reader {
	c, err := chacha20.NewUnauthenticatedCipher(key, make([]byte, chacha20.NonceSize))
	if err != nil {
		panic("keystore: chacha20: " + err.Error()) // key is always 32 bytes
	}
	return keystream{c}
}

func (k keystream) Read(p []byte) (int, error) {
	clear(p)
	k.c.XORKeyStream(p, p)
	return len(p), nil
}

// p256FromSeed returns the P-256 key whose scalar is the first 32-byte
// big-endian keystream candidate in [1, n−1].
func p256FromSeed(seed []byte) (*ecdsa.PrivateKey, error) {
	n := elliptic.P256().Params().N
	ks := newKeystream(seed)
	buf := make([]byte, 32)
	for range 1 << 16 { // a candidate is rejected with probability ~2^-32
		if _, err := io.ReadFull(ks, buf); err != nil {
			return nil, err
		}
		c := new(big.Int).SetBytes(buf)
		if c.Sign() > 0 && c.Cmp(n) < 0 {
			return ecdsa.ParseRawPrivateKey(elliptic.P256(), buf)
		}
	}
	return nil, errors.New("no scalar candidate in range")
}

// deterministicECDSAKey signs with RFC 6979 nonces (Go's crypto/ecdsa does
// this when Sign gets a nil random source).
type deterministicECDSAKey struct {
	priv *ecdsa.PrivateKey
	pub  []byte
}

func (k *deterministicECDSAKey) Algorithm() string { return ECDSAP256 }
func (k *deterministicECDSAKey) PublicKey() []byte { return bytes.Clone(k.pub) }
func (k *deterministicECDSAKey) Sign(msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	der, err := k.priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("ecdsa-p256 sign: %w", err)
	}
	return ECDSADERToRS(der)
}

// rsaFromSeed generates an RSA key (e = 65537) of the given size from a
// ChaCha20 keystream keyed by seed: each prime is the first bits/2-bit
// candidate, read big-endian from the stream with its two top bits and its
// low bit set, that is probably prime (Miller–Rabin ×20 plus Baillie–PSW)
// and has gcd(e, p − 1) = 1; q must differ from p. The two top bits make
// n exactly `bits` long.
func rsaFromSeed(seed []byte, bits int) (*rsa.PrivateKey, error) {
	const e = 65537
	ks := newKeystream(seed)
	prime := func() (*big.Int, error) {
		buf := make([]byte, bits/16)
		bigE := big.NewInt(e)
		one := big.NewInt(1)
		for range 1 << 20 {
			if _, err := io.ReadFull(ks, buf); err != nil {
				return nil, err
			}
			buf[0] |= 0xc0
			buf[len(buf)-1] |= 1
			p := new(big.Int).SetBytes(buf)
			if !p.ProbablyPrime(20) {
				continue
			}
			pm1 := new(big.Int).Sub(p, one)
			if new(big.Int).GCD(nil, nil, bigE, pm1).Cmp(one) != 0 {
				continue
			}
			return p, nil
		}
		return nil, errors.New("prime search exhausted")
	}
	p, err := prime()
	if err != nil {
		return nil, err
	}
	var q *big.Int
	for {
		if q, err = prime(); err != nil {
			return nil, err
		}
		if q.Cmp(p) != 0 {
			break
		}
	}
	if p.Cmp(q) < 0 {
		p, q = q, p
	}
	one := big.NewInt(1)
	n := new(big.Int).Mul(p, q)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(big.NewInt(e), phi)
	if d == nil {
		return nil, errors.New("e not invertible")
	}
	priv := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: e}, D: d, Primes: []*big.Int{p, q}}
	priv.Precompute()
	if err := priv.Validate(); err != nil {
		return nil, err
	}
	return priv, nil
}

// deterministicRSAKey signs RSASSA-PSS (SHA-256, MGF1-SHA256) with a fixed
// per-label salt, which crypto/rsa cannot do, so the encoding and the private
// operation are done here.
type deterministicRSAKey struct {
	priv *rsa.PrivateKey
	pub  []byte
	salt []byte
}

func (k *deterministicRSAKey) Algorithm() string { return RSAPSSSHA256 }
func (k *deterministicRSAKey) PublicKey() []byte { return bytes.Clone(k.pub) }
func (k *deterministicRSAKey) Sign(msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	return signPSSWithSalt(k.priv, digest[:], k.salt)
}

// signPSSWithSalt is RSASSA-PSS-SIGN (RFC 8017 §8.1.1) with SHA-256, MGF1
// with SHA-256 and the given salt.
func signPSSWithSalt(priv *rsa.PrivateKey, mHash, salt []byte) ([]byte, error) {
	modBits := priv.N.BitLen()
	em, err := emsaPSSEncode(mHash, modBits-1, salt)
	if err != nil {
		return nil, err
	}
	m := new(big.Int).SetBytes(em)
	s := rsaPrivate(priv, m)
	// Guard against a faulty private operation leaking the key: check s^e = m.
	if new(big.Int).Exp(s, big.NewInt(int64(priv.E)), priv.N).Cmp(m) != 0 {
		return nil, errors.New("rsa-pss sign: private operation self-check failed")
	}
	return s.FillBytes(make([]byte, priv.Size())), nil
}

// rsaPrivate computes m^d mod n with the CRT. It is not constant time: this
// keystore is for development only.
func rsaPrivate(priv *rsa.PrivateKey, m *big.Int) *big.Int {
	p, q := priv.Primes[0], priv.Primes[1]
	one := big.NewInt(1)
	dp := new(big.Int).Mod(priv.D, new(big.Int).Sub(p, one))
	dq := new(big.Int).Mod(priv.D, new(big.Int).Sub(q, one))
	qInv := new(big.Int).ModInverse(q, p)
	m1 := new(big.Int).Exp(m, dp, p)
	m2 := new(big.Int).Exp(m, dq, q)
	h := new(big.Int).Sub(m1, m2)
	h.Mul(h, qInv)
	h.Mod(h, p)
	h.Mul(h, q)
	return h.Add(h, m2)
}

// emsaPSSEncode is EMSA-PSS-ENCODE (RFC 8017 §9.1.1) for SHA-256 and
// MGF1-SHA256 with an explicit salt.
func emsaPSSEncode(mHash []byte, emBits int, salt []byte) ([]byte, error) {
	const hLen = sha256.Size
	if len(mHash) != hLen {
		return nil, fmt.Errorf("emsa-pss: message hash of %d bytes", len(mHash))
	}
	emLen := (emBits + 7) / 8
	if emLen < hLen+len(salt)+2 {
		return nil, errors.New("emsa-pss: encoding error (modulus too small)")
	}
	h := sha256.New()
	h.Write(make([]byte, 8))
	h.Write(mHash)
	h.Write(salt)
	H := h.Sum(nil)

	em := make([]byte, emLen)
	db := em[:emLen-hLen-1]
	db[len(db)-len(salt)-1] = 0x01
	copy(db[len(db)-len(salt):], salt)
	mgf1XOR(db, H)
	db[0] &= 0xff >> (8*emLen - emBits)
	copy(em[emLen-hLen-1:], H)
	em[emLen-1] = 0xbc
	return em, nil
}

// mgf1XOR XORs out with MGF1-SHA256(seed).
func mgf1XOR(out, seed []byte) {
	var counter [4]byte
	done := 0
	for done < len(out) {
		h := sha256.New()
		h.Write(seed)
		h.Write(counter[:])
		block := h.Sum(nil)
		for i := 0; i < len(block) && done < len(out); i++ {
			out[done] ^= block[i]
			done++
		}
		for i := 3; i >= 0; i-- {
			counter[i]++
			if counter[i] != 0 {
				break
			}
		}
	}
}
