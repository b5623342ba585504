package wire

import "fmt"

// The log-error variants of SPEC §13. Each is a distinct type so callers can
// use errors.As; Error() renders the reference message.

// EntryNotFoundError is log-error entry-not-found.
type EntryNotFoundError struct{ Seqno uint64 }

func (e *EntryNotFoundError) Error() string {
	return fmt.Sprintf("secure log entry not found: seqno=%d", e.Seqno)
}

// StreamNotFoundError is log-error stream-not-found.
type StreamNotFoundError struct{ Stream string }

func (e *StreamNotFoundError) Error() string { return "stream not found: " + e.Stream }

// ChainBrokenError is log-error chain-broken: tampering, drift, rollback or divergence.
type ChainBrokenError struct {
	Seqno  uint64
	Reason string
}

func (e *ChainBrokenError) Error() string {
	return fmt.Sprintf("chain broken at seqno %d: %s", e.Seqno, e.Reason)
}

// InclusionMismatchError is log-error inclusion-mismatch.
type InclusionMismatchError struct {
	Seqno     uint64
	SegmentID uint64
}

func (e *InclusionMismatchError) Error() string {
	return fmt.Sprintf("inclusion proof does not reconstruct expected root (seqno=%d, segment_id=%d)", e.Seqno, e.SegmentID)
}

// SegmentNotFoundError is log-error segment-not-found.
type SegmentNotFoundError struct{ SegmentID uint64 }

func (e *SegmentNotFoundError) Error() string {
	return fmt.Sprintf("segment not found: %d", e.SegmentID)
}

// SegmentAlreadyClosedError is log-error segment-already-closed (DECISIONS 13:
// produced when a close races another close of the same stream).
type SegmentAlreadyClosedError struct{ SegmentID uint64 }

func (e *SegmentAlreadyClosedError) Error() string {
	return fmt.Sprintf("segment already closed: %d", e.SegmentID)
}

// EmptySegmentError is log-error empty-segment.
type EmptySegmentError struct{ Stream string }

func (e *EmptySegmentError) Error() string {
	return fmt.Sprintf("no entries since last segment close for stream '%s'", e.Stream)
}

// NotImplementedError is log-error not-implemented (kept for completeness).
type NotImplementedError struct{}

func (e *NotImplementedError) Error() string {
	return "this operation is not implemented until a later phase"
}

// StorageError is log-error storage: any store failure.
type StorageError struct {
	Msg string
	Err error // underlying error, if any
}

func (e *StorageError) Error() string { return "storage error: " + e.Msg }
func (e *StorageError) Unwrap() error { return e.Err }

// EncodingError is log-error encoding: AEAD seal/open failures.
type EncodingError struct{ Msg string }

func (e *EncodingError) Error() string { return "encoding error: " + e.Msg }

// InvalidError is log-error invalid: bad caller input.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return "invalid input: " + e.Msg }

// Invalidf returns an *InvalidError with a formatted message.
func Invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Storagef wraps a store failure as a *StorageError.
func Storagef(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if err != nil {
		if msg != "" {
			msg += ": "
		}
		msg += err.Error()
	}
	return &StorageError{Msg: msg, Err: err}
}
