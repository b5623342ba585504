// Package tlog is securelog's standard transparency-log view (issue 11): one
// append-only RFC 6962 Merkle tree over every committed entry in global seqno
// order (leaf i is the entry with seqno i+1; leaf data is its 32-byte
// entry_hash, so the tree reveals no event content), C2SP tlog-checkpoint
// signed notes over it, the C2SP tlog-tiles read API and C2SP tlog-proof
// documents.
//
// The tree math is golang.org/x/mod/sumdb/tlog's; this package adds the
// storage layout (tiles of height 8 in store meta records, committed in the
// same synced batch as the entries), the checkpoint note format over
// golang.org/x/mod/sumdb/note, and a note.Signer over the keystore.
//
// This is an additional view of the same log: v1 entries, segments and v1
// checkpoints are untouched.
package tlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/keystore"
)

// MaxCheckpointSize caps the size of a checkpoint note (text and
// signatures) accepted by ParseCheckpoint and OpenCheckpoint.
const MaxCheckpointSize = 16 << 10

// DefaultOriginPrefix is the prefix of the default origin: the origin of a
// log whose signing identity is ID is DefaultOriginPrefix + ID.
const DefaultOriginPrefix = "securelog.invalid/"

// Checkpoint is the body of a C2SP tlog-checkpoint note: the log's origin,
// the tree size and the RFC 6962 root hash at that size.
type Checkpoint struct {
	// Origin identifies the log (first line); it is also the name of the
	// log's note key.
	Origin string
	// Size is the number of leaves.
	Size int64
	// Root is the RFC 6962 Merkle tree hash of the first Size leaves.
	Root tlog.Hash
	// Extensions are optional extension lines (non-empty); securelog
	// writes none.
	Extensions []string
}

// String returns the note text (Text) as a string.
func (c Checkpoint) String() string { return string(c.Text()) }

// EmptyTreeHash is the RFC 6962 hash of the empty tree: SHA-256 of the
// empty string. A checkpoint of size zero must carry it.
var EmptyTreeHash = tlog.Hash(sha256.Sum256(nil))

// Tree returns the checkpoint's size and root as a tlog.Tree.
func (c Checkpoint) Tree() tlog.Tree { return tlog.Tree{N: c.Size, Hash: c.Root} }

// Text returns the note text of the checkpoint:
//
//	<origin>\n<size in decimal>\n<base64 root>\n[<extension>\n]...
func (c Checkpoint) Text() []byte {
	b := fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	for _, e := range c.Extensions {
		b = append(b, e...)
		b = append(b, '\n')
	}
	return b
}

// CheckpointError reports a malformed checkpoint note or text.
type CheckpointError struct{ Msg string }

func (e *CheckpointError) Error() string { return "malformed checkpoint: " + e.Msg }

func ckErr(format string, args ...any) error {
	return &CheckpointError{Msg: fmt.Sprintf(format, args...)}
}

// ValidOrigin reports whether origin can be a checkpoint origin and a note
// key name: non-empty valid UTF-8 with no Unicode space and no '+'.
func ValidOrigin(origin string) bool {
	return origin != "" && utf8.ValidString(origin) && strings.IndexFunc(origin, unicode.IsSpace) < 0 &&
		!strings.Contains(origin, "+") && strings.IndexFunc(origin, unicode.IsControl) < 0
}

// DefaultOrigin returns the default origin of a log signed by the keystore
// identity id: DefaultOriginPrefix + id, with every character not allowed in
// a note key name (space, '+', control) replaced by '_'.
func DefaultOrigin(id string) string {
	if id == "" {
		id = "securelog"
	}
	clean := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '+' || r == utf8.RuneError {
			return '_'
		}
		return r
	}, id)
	return DefaultOriginPrefix + clean
}

// ParseCheckpoint parses checkpoint note text (without signatures). It
// accepts exactly what Text produces: a valid origin, a decimal size with no
// leading zeroes, the canonical base64 of a 32-byte root, non-empty
// extension lines, each line ending in '\n'.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	if len(text) > MaxCheckpointSize {
		return Checkpoint{}, ckErr("%d bytes, more than %d", len(text), MaxCheckpointSize)
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return Checkpoint{}, ckErr("text does not end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, ckErr("%d lines, want at least 3 (origin, size, root)", len(lines))
	}
	c := Checkpoint{Origin: lines[0]}
	if !ValidOrigin(c.Origin) {
		return Checkpoint{}, ckErr("origin %q is empty or has a space, '+' or control character", c.Origin)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || lines[1] != strconv.FormatInt(n, 10) {
		return Checkpoint{}, ckErr("tree size %q is not a decimal integer without leading zeroes", lines[1])
	}
	c.Size = n
	root, err := DecodeHash(lines[2])
	if err != nil {
		return Checkpoint{}, ckErr("root hash: %v", err)
	}
	c.Root = root
	for i, e := range lines[3:] {
		if e == "" {
			return Checkpoint{}, ckErr("extension line %d is empty", i+1)
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

// DecodeHash decodes the canonical standard base64 encoding of a 32-byte
// hash (44 characters, one '=' of padding); anything else is an error.
func DecodeHash(s string) (tlog.Hash, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return tlog.Hash{}, fmt.Errorf("%q is not the canonical base64 of 32 bytes", s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h, nil
}

// EncodeHash returns the standard base64 encoding of h.
func EncodeHash(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

// noteSigner is a note.Signer over a keystore key.
type noteSigner struct {
	name string
	hash uint32
	key  keystore.Key
}

func (s *noteSigner) Name() string                    { return s.name }
func (s *noteSigner) KeyHash() uint32                 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) { return s.key.Sign(msg) }

// NewNoteSigner returns a note.Signer named name that signs with an Ed25519
// key of the keystore (software or PKCS#11: the private key never leaves
// it). The key's note key hash is the C2SP signed-note hash of
// name ‖ '\n' ‖ 0x01 ‖ public key.
func NewNoteSigner(name string, key keystore.Key) (note.Signer, error) {
	if !ValidOrigin(name) {
		return nil, fmt.Errorf("note key name %q: empty or has a space, '+' or control character", name)
	}
	if key.Algorithm() != keystore.Ed25519 {
		return nil, fmt.Errorf("note key %q: algorithm %s; signed-note checkpoints need an ed25519 key", name, key.Algorithm())
	}
	pub := key.PublicKey()
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("note key %q: ed25519 public key of %d bytes", name, len(pub))
	}
	return &noteSigner{name: name, hash: KeyHash(name, pub), key: key}, nil
}

// KeyHash returns the C2SP signed-note key hash of an Ed25519 key (type
// 0x01): KeyID(name, 0x01, pub).
func KeyHash(name string, pub ed25519.PublicKey) uint32 { return KeyID(name, 0x01, pub) }

// KeyID returns the C2SP signed-note key ID of a key of signature type
// sigType (0x01 Ed25519, 0x04 cosignature/v1): the first four bytes
// (big-endian) of SHA-256(name ‖ '\n' ‖ sigType ‖ pub).
func KeyID(name string, sigType byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', sigType})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// VerifierKey returns the note verifier key ("vkey") of an Ed25519 public
// key: <name>+<8 hex key hash>+<base64(0x01 ‖ pub)>.
func VerifierKey(name string, pub []byte) (string, error) {
	if !ValidOrigin(name) {
		return "", fmt.Errorf("note key name %q: empty or has a space, '+' or control character", name)
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("note key %q: ed25519 public key of %d bytes, want 32", name, len(pub))
	}
	return note.NewEd25519VerifierKey(name, ed25519.PublicKey(pub))
}

// ErrNoLogSignature is returned by OpenCheckpoint when the note carries no
// valid signature by the log's key (named after the origin).
var ErrNoLogSignature = errors.New("checkpoint has no valid signature by the log's key")

// OpenCheckpoint verifies a signed checkpoint note: it must be at most
// MaxCheckpointSize bytes, carry a valid signature by a verifier named
// origin (the log key) among verifiers, and its text must parse with that
// origin. Signatures by other known keys (witness cosignatures verified by
// note.Verifiers the caller adds) must be valid too; unknown ones are
// ignored, as the signed-note spec requires. The opened note is returned
// with its verified and unverified signatures.
func OpenCheckpoint(msg []byte, origin string, verifiers note.Verifiers) (Checkpoint, *note.Note, error) {
	if len(msg) > MaxCheckpointSize {
		return Checkpoint{}, nil, ckErr("note of %d bytes, more than %d", len(msg), MaxCheckpointSize)
	}
	n, err := note.Open(msg, verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, nil, fmt.Errorf("%w (origin %q)", ErrNoLogSignature, origin)
		}
		return Checkpoint{}, nil, fmt.Errorf("open checkpoint note: %w", err)
	}
	signed := false
	for _, s := range n.Sigs {
		if s.Name == origin {
			signed = true
		}
	}
	if !signed {
		return Checkpoint{}, nil, fmt.Errorf("%w (origin %q)", ErrNoLogSignature, origin)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if c.Origin != origin {
		return Checkpoint{}, nil, ckErr("origin %q, want %q", c.Origin, origin)
	}
	return c, n, nil
}

// SignCheckpoint returns the signed note of c, signed by each signer in
// order (the log's signer first).
func SignCheckpoint(c Checkpoint, signers ...note.Signer) ([]byte, error) {
	if !ValidOrigin(c.Origin) {
		return nil, ckErr("origin %q is empty or has a space, '+' or control character", c.Origin)
	}
	if c.Size < 0 {
		return nil, ckErr("negative tree size %d", c.Size)
	}
	for _, e := range c.Extensions {
		if e == "" || strings.ContainsAny(e, "\n") {
			return nil, ckErr("extension line %q is empty or has a newline", e)
		}
	}
	return note.Sign(&note.Note{Text: string(c.Text())}, signers...)
}

// SplitNote returns a signed note's text (ending in '\n') and its
// signature lines (each ending in '\n'), or an error if msg is not a note
// (no blank line before a non-empty signature block).
func SplitNote(msg []byte) (text, sigs []byte, err error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 || i+2 >= len(msg) || msg[len(msg)-1] != '\n' {
		return nil, nil, ckErr("not a signed note: no signature block after a blank line")
	}
	return msg[:i+1], msg[i+2:], nil
}
