package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The store seam's contract errors. Every backend returns these types (wrapped
// with context is fine), so callers test them with errors.Is / errors.As
// instead of matching text. Their messages are the reference texts (SPEC §15),
// which are also what travels over the JSON-RPC wire; ParseError maps such a
// text back to its type.

// ErrMissingSeqno is returned by Insert (and batch commits) for a row
// without a seqno (SPEC §15.3).
var ErrMissingSeqno = errors.New("secure_log_insert requires row.seqno to be Some")

// DuplicateSeqnoError is returned when an entry's seqno is already stored
// (or appears twice in one batch).
type DuplicateSeqnoError struct {
	Seqno uint64
}

const duplicatePrefix = "UNIQUE constraint failed: secure_log.seqno"

func (e *DuplicateSeqnoError) Error() string {
	return fmt.Sprintf("%s (%d)", duplicatePrefix, e.Seqno)
}

// SegmentNotFoundError is returned when an operation names a segment id that
// does not exist (SegmentSetSignature).
type SegmentNotFoundError struct {
	SegmentID uint64
}

const segmentNotFoundPrefix = "segment not found: "

func (e *SegmentNotFoundError) Error() string {
	return segmentNotFoundPrefix + strconv.FormatUint(e.SegmentID, 10)
}

// StreamNotFoundError is returned when an operation names a stream that does
// not exist (StreamSetTier, StreamDeprecate).
type StreamNotFoundError struct {
	Name string
}

const streamNotFoundPrefix = "stream not found: "

func (e *StreamNotFoundError) Error() string { return streamNotFoundPrefix + e.Name }

// SegmentOverlapError is returned by SegmentInsert for a segment that would
// not continue its stream's partition into segments: it overlaps a segment
// already stored for the stream, it skips an unsealed entry of the stream
// (does not start right after the last sealed seqno), its range is empty or
// reversed, or it lists a member outside its range. In the log this means
// another writer closed the stream's segment concurrently.
type SegmentOverlapError struct {
	Stream   string
	SeqStart uint64
	SeqEnd   uint64
	// Reason says which rule failed, naming the seqnos involved.
	Reason string
}

const overlapPrefix = "segment overlap: stream "

func (e *SegmentOverlapError) Error() string {
	return fmt.Sprintf("%s%s segment %d..%d: %s", overlapPrefix, strconv.Quote(e.Stream), e.SeqStart, e.SeqEnd, e.Reason)
}

// wireError keeps a server's error text exactly and unwraps to the typed
// error parsed from it.
type wireError struct {
	msg   string
	typed error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.typed }

// ParseError maps the text of err (for example a remote server's error as
// the transport reports it, "transport-http: server returned 500: segment
// not found: 7") back to the store's error type named in it. The returned
// error has err's exact text and unwraps to both the typed error and err.
// An error whose text names no store error is returned unchanged.
func ParseError(err error) error {
	if err == nil {
		return nil
	}
	typed := parseText(err.Error())
	if typed == nil {
		return err
	}
	return &wireError{msg: err.Error(), typed: errors.Join(typed, err)}
}

func parseText(msg string) error {
	if strings.Contains(msg, ErrMissingSeqno.Error()) {
		return ErrMissingSeqno
	}
	if _, rest, ok := strings.Cut(msg, duplicatePrefix+" ("); ok {
		if n, ok := leadingUint(rest); ok {
			return &DuplicateSeqnoError{Seqno: n}
		}
	}
	if _, rest, ok := strings.Cut(msg, segmentNotFoundPrefix); ok {
		if n, ok := leadingUint(rest); ok {
			return &SegmentNotFoundError{SegmentID: n}
		}
	}
	if _, rest, ok := strings.Cut(msg, streamNotFoundPrefix); ok {
		return &StreamNotFoundError{Name: rest}
	}
	if _, rest, ok := strings.Cut(msg, overlapPrefix); ok {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil
		}
		name, _ := strconv.Unquote(q)
		e := &SegmentOverlapError{Stream: name}
		rest = strings.TrimPrefix(rest[len(q):], " segment ")
		rng, reason, _ := strings.Cut(rest, ": ")
		a, b, _ := strings.Cut(rng, "..")
		e.SeqStart, _ = strconv.ParseUint(a, 10, 64)
		e.SeqEnd, _ = strconv.ParseUint(b, 10, 64)
		e.Reason = reason
		return e
	}
	return nil
}

// leadingUint parses the decimal digits at the start of s.
func leadingUint(s string) (uint64, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	return n, err == nil
}
