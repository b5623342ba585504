// Package tlogwitness speaks the C2SP transparency-log witness protocols:
// c2sp.org/tlog-witness (POST /add-checkpoint), c2sp.org/tlog-cosignature
// (cosignature/v1, timestamped Ed25519 note signatures) and the
// c2sp.org/tlog-checkpoint note body they are about.
//
// The codecs (ParseAddCheckpointRequest, ParseSizeBody; checkpoints are
// package tlog's Checkpoint and ParseCheckpoint),
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
	"fmt"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	sltlog "github.com/securelog/securelog/pkg/tlog"
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

// Checkpoint is the body of a C2SP tlog-checkpoint note (origin, size,
// root hash, extension lines): package tlog's, the one checkpoint codec of
// securelog (sltlog.ParseCheckpoint parses the note text).
type Checkpoint = sltlog.Checkpoint

// EmptyTreeHash is the RFC 6962 hash of the empty tree: SHA-256 of the
// empty string. A checkpoint of size zero must carry it.
var EmptyTreeHash = sltlog.EmptyTreeHash

// parseCheckpoint parses a checkpoint note text (sltlog.ParseCheckpoint).
func parseCheckpoint(text string) (Checkpoint, error) {
	return sltlog.ParseCheckpoint([]byte(text))
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
	h, err := sltlog.DecodeHash(s)
	if err != nil {
		return tlog.Hash{}, formatErr("hash", s, "want the canonical standard base64 of 32 bytes")
	}
	return h, nil
}

// validName reports whether name is a valid note key name (and checkpoint
// origin): sltlog.ValidOrigin.
func validName(name string) bool { return sltlog.ValidOrigin(name) }
