// Package seal implements the AEAD payload sealing of SPEC §12: per-stream and
// per-segment keys derived with HKDF-SHA256 from a 32-byte master key (KEK),
// ChaCha20-Poly1305 with a stored 12-byte nonce, the AAD that binds stream,
// tier and segment, and the keyed metadata tags of highly-restricted streams
// (§12.7). Everything here except LoadKEK and GenerateKEKFile is pure.
//
// The byte formats (HKDF info strings, AAD, nonce‖ciphertext‖tag) are version 1
// exactly. Because the info strings embed stream ids unescaped (SPEC §21,
// DECISIONS 21), CheckStreamID rejects ':' in stream ids of sealed tiers.
package seal

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Confidentiality tiers (SPEC §3.5), canonical spellings.
const (
	TierPublic           = "public"
	TierProtected        = "protected"
	TierHighlyRestricted = "highly-restricted"
)

// Sizes of the sealed layout (SPEC §2, §12.2).
const (
	// KEKSize is the length of the master key.
	KEKSize = 32
	// NonceSize is the ChaCha20-Poly1305 nonce length stored in front of the
	// ciphertext.
	NonceSize = chacha20poly1305.NonceSize
	// TagSize is the Poly1305 tag length.
	TagSize = chacha20poly1305.Overhead
	// Overhead is what sealing adds to a plaintext: nonce plus tag (28).
	Overhead = NonceSize + TagSize
	// MinimizedPrefix starts every minimised metadata tag (§12.7).
	MinimizedPrefix = "min:"
)

// Field kinds accepted by Minimize (§12.7).
const (
	KindEventType = "event_type"
	KindProducer  = "producer"
)

const (
	infoPrefix     = "tpm:secure-log:v1:stream="
	minimizePrefix = "tpm:secure-log:v1:minimize:stream="
)

// ParseTier parses a tier the way the reference does on the sealing paths
// (SPEC §3.5): case-insensitive, with "highly_restricted" accepted as an
// alias. It returns the canonical spelling, or an error naming the value.
func ParseTier(s string) (string, error) {
	switch strings.ToLower(s) {
	case TierPublic:
		return TierPublic, nil
	case TierProtected:
		return TierProtected, nil
	case TierHighlyRestricted, "highly_restricted":
		return TierHighlyRestricted, nil
	}
	return "", fmt.Errorf("unknown tier %q (expected public, protected or highly-restricted)", s)
}

// ValidTierExact reports whether s is exactly one of the canonical tier
// spellings (used where new tiers are written, e.g. create-stream).
func ValidTierExact(s string) bool {
	return s == TierPublic || s == TierProtected || s == TierHighlyRestricted
}

// Sealed reports whether a tier (canonical spelling) seals every append
// (DECISIONS 7): protected and highly-restricted do, public does not.
func Sealed(tier string) bool {
	return tier == TierProtected || tier == TierHighlyRestricted
}

// CheckStreamID rejects stream ids that could make HKDF info strings or the
// AAD ambiguous (DECISIONS 21): it fails if stream contains ':'. Callers apply
// it to streams of sealed tiers (see Sealed); public streams may keep ':'.
func CheckStreamID(stream string) error {
	if strings.ContainsRune(stream, ':') {
		return fmt.Errorf("stream id %q contains ':', which is not allowed for sealed tiers (protected, highly-restricted)", stream)
	}
	return nil
}

func derive(ikm []byte, info string) []byte {
	// HKDF-SHA256 with an absent salt (treated as HashLen zero bytes by
	// RFC 5869) and L = 32 cannot fail: the output is far below 255*32.
	k, err := hkdf.Key(sha256.New, ikm, nil, info, 32)
	if err != nil {
		panic("seal: hkdf: " + err.Error())
	}
	return k
}

// StreamKey derives the stream key: HKDF-SHA256(IKM = kek, no salt, info =
// "tpm:secure-log:v1:stream=" ‖ stream ‖ ":tier=" ‖ tier, L = 32). tier must
// be the canonical spelling.
func StreamKey(kek []byte, stream, tier string) []byte {
	return derive(kek, infoPrefix+stream+":tier="+tier)
}

// SegmentKey derives a segment key: HKDF-SHA256(IKM = streamKey, no salt,
// info = "v1:segment:" ‖ decimal(segmentID), L = 32).
func SegmentKey(streamKey []byte, segmentID uint64) []byte {
	return derive(streamKey, "v1:segment:"+strconv.FormatUint(segmentID, 10))
}

// AAD returns the associated data "tpm:secure-log:v1:stream=" ‖ stream ‖
// ":tier=" ‖ tier ‖ ":segment=" ‖ decimal(segmentID).
func AAD(stream, tier string, segmentID uint64) []byte {
	return []byte(infoPrefix + stream + ":tier=" + tier + ":segment=" + strconv.FormatUint(segmentID, 10))
}

func aeadFor(kek []byte, stream, tier string, segmentID uint64) (cipher.AEAD, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("master KEK must be %d bytes, got %d", KEKSize, len(kek))
	}
	key := SegmentKey(StreamKey(kek, stream, tier), segmentID)
	return chacha20poly1305.New(key)
}

// Seal encrypts plaintext for (stream, tier, segmentID) under kek with the
// given 12-byte nonce and returns nonce ‖ ciphertext ‖ tag
// (len(plaintext) + 28 bytes). Callers pass 12 fresh random bytes as nonce;
// the nonce is a parameter so that the function stays pure and testable.
func Seal(kek []byte, stream, tier string, segmentID uint64, nonce, plaintext []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("aead seal failed: nonce must be %d bytes, got %d", NonceSize, len(nonce))
	}
	a, err := aeadFor(kek, stream, tier, segmentID)
	if err != nil {
		return nil, fmt.Errorf("aead seal failed: %w", err)
	}
	out := make([]byte, NonceSize, NonceSize+len(plaintext)+TagSize)
	copy(out, nonce)
	return a.Seal(out, nonce, plaintext, AAD(stream, tier, segmentID)), nil
}

// ErrOpen is wrapped by Open's authentication failures (wrong KEK, segment,
// tier or stream, or tampered bytes).
var ErrOpen = errors.New("message authentication failed")

// Open reverses Seal: it splits the stored nonce ‖ ciphertext ‖ tag and
// decrypts it. Stored bytes shorter than 28 give "sealed payload too short:
// <n> bytes"; an authentication failure gives "aead open failed: …" wrapping
// ErrOpen.
func Open(kek []byte, stream, tier string, segmentID uint64, stored []byte) ([]byte, error) {
	if len(stored) < Overhead {
		return nil, fmt.Errorf("sealed payload too short: %d bytes", len(stored))
	}
	a, err := aeadFor(kek, stream, tier, segmentID)
	if err != nil {
		return nil, fmt.Errorf("aead open failed: %w", err)
	}
	pt, err := a.Open(nil, stored[:NonceSize], stored[NonceSize:], AAD(stream, tier, segmentID))
	if err != nil {
		return nil, fmt.Errorf("aead open failed: stream %q tier %s segment %d: %w", stream, tier, segmentID, ErrOpen)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// Minimize returns the keyed metadata tag of SPEC §12.7: "min:" ‖ hex(first
// 8 bytes of HKDF-SHA256(IKM = kek, no salt, info =
// "tpm:secure-log:v1:minimize:stream=" ‖ stream ‖ ":field=" ‖ kind ‖
// ":value=" ‖ value, L = 32)), 20 characters. kind is KindEventType or
// KindProducer.
func Minimize(kek []byte, stream, kind, value string) string {
	k := derive(kek, minimizePrefix+stream+":field="+kind+":value="+value)
	return MinimizedPrefix + hex.EncodeToString(k[:8])
}

// IsMinimized reports whether s is a minimised tag, i.e. starts with "min:".
func IsMinimized(s string) bool { return strings.HasPrefix(s, MinimizedPrefix) }
