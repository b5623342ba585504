// Package tlogwitness speaks the C2SP transparency-log witness protocols:
// c2sp.org/tlog-witness (POST /add-checkpoint), c2sp.org/tlog-cosignature
// (cosignature/v1, timestamped Ed25519 note signatures) and the
// c2sp.org/tlog-checkpoint note body they are about.
//
// The codecs (ParseCheckpoint, ParseAddCheckpointRequest, ParseSizeBody),
// the cosignature signer and verifier, the witness policy and
// MergeCosignatures are pure: no I/O, no clock (a clock is passed in).
// Client submits checkpoints to witnesses over HTTP and collects their
// cosignatures.
//
// Every parser here is strict: it rejects what the matching formatter
// would not produce (leading zeroes, non-canonical base64, missing final
// newlines), so a value has one encoding.
package tlogwitness

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/mod/sumdb/tlog"
)

// FormatError reports a malformed protocol message: what was being parsed,
// the offending value (truncated) and why.
type FormatError struct {
	What  string
	Value string
	Err   string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("tlogwitness: malformed %s %q: %s", e.What, e.Value, e.Err)
}

func formatErr(what, value, why string) error {
	const max = 80
	if len(value) > max {
		value = value[:max] + "…"
	}
	return &FormatError{What: what, Value: value, Err: why}
}

// Checkpoint is the body of a C2SP tlog-checkpoint note: the log's origin
// line, the tree size and the RFC 6962 root hash, plus optional extension
// lines.
type Checkpoint struct {
	// Origin identifies the log (the first line).
	Origin string
	// Size is the number of leaves.
	Size int64
	// Hash is the RFC 6962 Merkle tree hash of the first Size leaves.
	Hash tlog.Hash
	// Extensions are the non-empty lines after the root hash, if any.
	Extensions []string
}

// String returns the note text of the checkpoint: origin, size and
// base64 root hash (and extension lines), each ending in a newline.
func (c Checkpoint) String() string {
	var b strings.Builder
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(base64.StdEncoding.EncodeToString(c.Hash[:]))
	b.WriteByte('\n')
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.String()
}

// EmptyTreeHash is the RFC 6962 hash of the empty tree: SHA-256 of the
// empty string. A checkpoint of size zero must carry it.
var EmptyTreeHash = tlog.Hash{
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
}

// ParseCheckpoint parses a checkpoint note text (the part of the note
// before the blank line, including its final newline). It rejects an empty
// origin or an origin with spaces or '+', a size with leading zeroes or
// outside int64, a root hash that is not the canonical base64 of 32
// bytes, empty extension lines and a text without its final newline.
func ParseCheckpoint(text string) (Checkpoint, error) {
	body, ok := strings.CutSuffix(text, "\n")
	if !ok {
		return Checkpoint{}, formatErr("checkpoint", text, "does not end in a newline")
	}
	lines := strings.Split(body, "\n")
	if len(lines) < 3 {
		return Checkpoint{}, formatErr("checkpoint", text, "has fewer than three lines (origin, size, root hash)")
	}
	if !validName(lines[0]) {
		return Checkpoint{}, formatErr("checkpoint origin", lines[0], "is empty or contains a space or '+'")
	}
	size, err := ParseSize(lines[1])
	if err != nil {
		return Checkpoint{}, err
	}
	hash, err := ParseHash(lines[2])
	if err != nil {
		return Checkpoint{}, err
	}
	c := Checkpoint{Origin: lines[0], Size: size, Hash: hash}
	for _, e := range lines[3:] {
		if e == "" {
			return Checkpoint{}, formatErr("checkpoint", text, "has an empty extension line")
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

// ParseSize parses a tree size: an ASCII decimal with no sign and no
// leading zeroes ("0" for zero) that fits an int64.
func ParseSize(s string) (int64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, formatErr("tree size", s, "want a decimal with no leading zeroes")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, formatErr("tree size", s, "want a decimal with no leading zeroes")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, formatErr("tree size", s, "does not fit a signed 64-bit integer")
	}
	return n, nil
}

// ParseHash parses the canonical standard base64 encoding of a 32-byte
// hash (44 characters with one '=' of padding and zero trailing bits).
func ParseHash(s string) (tlog.Hash, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		return tlog.Hash{}, formatErr("hash", s, "want the standard base64 of 32 bytes")
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return tlog.Hash{}, formatErr("hash", s, "non-canonical base64")
	}
	return tlog.Hash(b), nil
}

// validName reports whether name is a valid note key name (and checkpoint
// origin): non-empty, no Unicode spaces, no '+'.
func validName(name string) bool {
	if name == "" || strings.Contains(name, "+") {
		return false
	}
	for _, r := range name {
		if unicode.IsSpace(r) || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
