package tlogwitness

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	sltlog "github.com/securelog/securelog/pkg/tlog"
)

// Signature type bytes of c2sp.org/signed-note.
const (
	// SigTypeEd25519 is a plain Ed25519 note signature (log keys).
	SigTypeEd25519 = 0x01
	// SigTypeCosignatureV1 is a timestamped Ed25519 checkpoint
	// cosignature (c2sp.org/tlog-cosignature, cosignature/v1).
	SigTypeCosignatureV1 = 0x04
)

// CosignatureSize is the size of a cosignature/v1 signature after the key
// ID: an 8-byte big-endian timestamp and a 64-byte Ed25519 signature.
const CosignatureSize = 8 + ed25519.SignatureSize

// KeyID returns the note key ID of a key: the first four bytes, big-endian,
// of SHA-256(name ‖ "\n" ‖ sigType ‖ publicKey).
func KeyID(name string, sigType byte, publicKey []byte) uint32 {
	return sltlog.KeyID(name, sigType, publicKey)
}

// VerifierKey returns the vkey of a key: NAME+hex(key ID)+base64(sigType ‖
// publicKey).
func VerifierKey(name string, sigType byte, publicKey []byte) string {
	return fmt.Sprintf("%s+%08x+%s", name, KeyID(name, sigType, publicKey),
		base64.StdEncoding.EncodeToString(append([]byte{sigType}, publicKey...)))
}

// CosignatureMessage returns the message a cosignature/v1 signs:
// "cosignature/v1\n", "time T\n", then the checkpoint note text.
func CosignatureMessage(timestamp uint64, checkpointText string) []byte {
	return []byte("cosignature/v1\ntime " + strconv.FormatUint(timestamp, 10) + "\n" + checkpointText)
}

// Ed25519Key is an Ed25519 signing key: a keystore.Key of algorithm
// ed25519 satisfies it. Sign must be PureEdDSA over msg.
type Ed25519Key interface {
	PublicKey() []byte
	Sign(msg []byte) ([]byte, error)
}

// CosignatureSigner is a note.Signer producing cosignature/v1 signatures:
// timestamp ‖ Ed25519(CosignatureMessage). It signs only checkpoints
// (ParseCheckpoint must accept the text).
type CosignatureSigner struct {
	name string
	key  Ed25519Key
	pub  ed25519.PublicKey
	id   uint32
	now  func() time.Time
}

// NewCosignatureSigner returns a cosigner named name (a valid note key
// name, e.g. "witness.example/w1") over key. now is the clock of the
// timestamps (time.Now if nil).
func NewCosignatureSigner(name string, key Ed25519Key, now func() time.Time) (*CosignatureSigner, error) {
	if !validName(name) {
		return nil, fmt.Errorf("tlogwitness: cosigner name %q: want a non-empty name without spaces or '+'", name)
	}
	pub := key.PublicKey()
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("tlogwitness: cosigner %q: public key is %d bytes, want an Ed25519 key (32)", name, len(pub))
	}
	if now == nil {
		now = time.Now
	}
	return &CosignatureSigner{name: name, key: key, pub: ed25519.PublicKey(pub),
		id: KeyID(name, SigTypeCosignatureV1, pub), now: now}, nil
}

// Name returns the cosigner name.
func (s *CosignatureSigner) Name() string { return s.name }

// KeyHash returns the cosigner's key ID.
func (s *CosignatureSigner) KeyHash() uint32 { return s.id }

// VerifierKey returns the cosigner's vkey (signature type 0x04).
func (s *CosignatureSigner) VerifierKey() string {
	return VerifierKey(s.name, SigTypeCosignatureV1, s.pub)
}

// Sign cosigns a checkpoint note text at the current time (whole seconds,
// which must be positive: a cosignature never omits its timestamp).
func (s *CosignatureSigner) Sign(msg []byte) ([]byte, error) {
	if _, err := parseCheckpoint(string(msg)); err != nil {
		return nil, fmt.Errorf("tlogwitness: cosign: %w", err)
	}
	t := s.now().Unix()
	if t <= 0 {
		return nil, fmt.Errorf("tlogwitness: cosign: clock reads %d, want a positive POSIX time", t)
	}
	sig, err := s.key.Sign(CosignatureMessage(uint64(t), string(msg)))
	if err != nil {
		return nil, fmt.Errorf("tlogwitness: cosign as %q: %w", s.name, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("tlogwitness: cosign as %q: key returned a %d-byte signature, want 64", s.name, len(sig))
	}
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, CosignatureSize), uint64(t)), sig...), nil
}

// CosignatureVerifier is a note.Verifier of cosignature/v1 signatures.
// Verify accepts a signature only over a checkpoint text, with a timestamp
// in 1..2^63-1; whether the timestamp is in the future is the caller's
// check (CosignatureTime).
type CosignatureVerifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
}

// NewCosignatureVerifier returns the verifier of a cosigner's public key.
func NewCosignatureVerifier(name string, publicKey ed25519.PublicKey) (*CosignatureVerifier, error) {
	if !validName(name) {
		return nil, fmt.Errorf("tlogwitness: cosigner name %q: want a non-empty name without spaces or '+'", name)
	}
	if len(publicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("tlogwitness: cosigner %q: public key is %d bytes, want 32", name, len(publicKey))
	}
	return &CosignatureVerifier{name: name, id: KeyID(name, SigTypeCosignatureV1, publicKey), pub: publicKey}, nil
}

// Name returns the cosigner name.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash returns the cosigner's key ID.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.id }

// String returns the vkey.
func (v *CosignatureVerifier) String() string {
	return VerifierKey(v.name, SigTypeCosignatureV1, v.pub)
}

// Verify reports whether sig (after the key ID) is a valid cosignature/v1
// of the checkpoint text msg.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != CosignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t == 0 || t > math.MaxInt64 {
		return false
	}
	if _, err := parseCheckpoint(string(msg)); err != nil {
		return false
	}
	return ed25519.Verify(v.pub, CosignatureMessage(t, string(msg)), sig[8:])
}

// NewVerifier parses a vkey of signature type 0x01 (a plain Ed25519 note
// key, as logs sign with) or 0x04 (a cosignature/v1 key, as witnesses
// cosign with). The key ID in the vkey must match the key.
func NewVerifier(vkey string) (note.Verifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	idHex, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(idHex) != 8 {
		return nil, fmt.Errorf("tlogwitness: vkey %q: want NAME+KEYID+BASE64", vkey)
	}
	id, err := strconv.ParseUint(idHex, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("tlogwitness: vkey %q: key ID %q is not 8 hex digits", vkey, idHex)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("tlogwitness: vkey %q: want base64 of a type byte and a 32-byte Ed25519 key", vkey)
	}
	if KeyID(name, raw[0], raw[1:]) != uint32(id) {
		return nil, fmt.Errorf("tlogwitness: vkey %q: key ID %s does not match the key", vkey, idHex)
	}
	switch raw[0] {
	case SigTypeEd25519:
		return note.NewVerifier(vkey)
	case SigTypeCosignatureV1:
		return NewCosignatureVerifier(name, ed25519.PublicKey(raw[1:]))
	}
	return nil, fmt.Errorf("tlogwitness: vkey %q: signature type 0x%02x, want 0x01 (Ed25519) or 0x04 (cosignature/v1)", vkey, raw[0])
}

// CosignatureTime returns the timestamp of a cosignature/v1 note
// signature.
func CosignatureTime(sig note.Signature) (time.Time, error) {
	raw, err := base64.StdEncoding.DecodeString(sig.Base64)
	if err != nil || len(raw) != 4+CosignatureSize {
		return time.Time{}, errors.New("tlogwitness: not a cosignature/v1 signature (want a key ID, an 8-byte timestamp and 64 bytes)")
	}
	t := binary.BigEndian.Uint64(raw[4:])
	if t > math.MaxInt64 {
		return time.Time{}, fmt.Errorf("tlogwitness: cosignature timestamp %d exceeds 2^63-1", t)
	}
	return time.Unix(int64(t), 0).UTC(), nil
}
