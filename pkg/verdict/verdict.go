// Package verdict runs the bundle audit (pkg/bundle) and reports the
// outcome as one JSON document, the "securelog-verdict/v1" shape that the
// WebAssembly verifier (cmd/securelog-verifier) returns to its hosts: the
// browser console, a wazero test and the WASI Preview 2 component. Native
// code and the wasm module run this same function, so their verdicts can be
// compared byte for byte.
package verdict

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/checkpoint"
)

// Format is the verdict format tag.
const Format = "securelog-verdict/v1"

// MaxTrustFile bounds a trust file (they hold a few public keys).
const MaxTrustFile = 1 << 20

// Stages name what failed in Verdict.Stage.
const (
	// StageInput is a trust file or option that cannot be used.
	StageInput = "input"
	// StageBundle is a bundle that cannot be read (malformed JSON, wrong
	// format, a member missing or twice).
	StageBundle = "bundle"
	// StageAudit is a bundle that reads but does not hold.
	StageAudit = "audit"
)

// Verdict is the outcome of one audit.
type Verdict struct {
	Format string `json:"format"`
	// OK is true only if everything holds.
	OK bool `json:"ok"`
	// Stage is StageInput, StageBundle or StageAudit when !OK.
	Stage string `json:"stage,omitempty"`
	// Error is the first failure, naming its spot.
	Error string `json:"error,omitempty"`
	// Failure locates Error when it is about an entry, a segment or a
	// receipt.
	Failure *Spot `json:"failure,omitempty"`
	// Report is what was verified (partial when !OK).
	Report *bundle.AuditReport `json:"report,omitempty"`
}

// Spot is where the audit failed. Zero or absent members do not apply.
type Spot struct {
	// Seqno is the entry's sequence number.
	Seqno uint64 `json:"seqno,omitempty"`
	// SegmentID is the segment's id.
	SegmentID uint64 `json:"segment_id,omitempty"`
	// EntryIndex is the position in the bundle's entries array.
	EntryIndex *uint64 `json:"entry_index,omitempty"`
	// SegmentIndex is the position in the bundle's segments array.
	SegmentIndex *uint64 `json:"segment_index,omitempty"`
	// ReceiptIndex is the position in the bundle's witness_receipts array.
	ReceiptIndex *uint64 `json:"receipt_index,omitempty"`
}

// Input is what Run audits.
type Input struct {
	// Bundle holds Size bytes of a securelog-bundle/v1 document; it is
	// read in parts, never whole.
	Bundle io.ReaderAt
	Size   int64
	// Trust is a trust file's bytes; empty uses the bundle's own keys
	// (self-consistency only, reported as trust_source "bundle").
	Trust []byte
	// WitnessTrust is a witness trust file's bytes; empty leaves
	// cosignatures unverified.
	WitnessTrust []byte
	// AllowUnsignedTail accepts unsigned segments after the last signed one.
	AllowUnsignedTail bool
	// Progress, if set, is called with entries verified and the total.
	Progress func(done, total uint64)
}

// Run audits in and returns its verdict; it never panics on bad input.
func Run(ctx context.Context, in Input) Verdict {
	v := Verdict{Format: Format}
	var opts bundle.AuditOptions
	var err error
	if opts.Trust, err = parseTrust("trust file", in.Trust); err != nil {
		return v.fail(StageInput, err)
	}
	if opts.WitnessTrust, err = parseTrust("witness trust file", in.WitnessTrust); err != nil {
		return v.fail(StageInput, err)
	}
	opts.AllowUnsignedTail = in.AllowUnsignedTail
	opts.Progress = in.Progress
	r, err := bundle.NewReader(in.Bundle, in.Size)
	if err != nil {
		return v.fail(StageBundle, err)
	}
	rep, err := bundle.Audit(ctx, r, opts)
	v.Report = &rep
	if err != nil {
		v = v.fail(StageAudit, err)
		v.Failure = locate(err)
		return v
	}
	v.OK = true
	return v
}

// RunFiles is Run over files: the bundle at bundlePath (read in parts) and
// optional trust files (empty path: none).
func RunFiles(ctx context.Context, bundlePath, trustPath, witnessTrustPath string, allowUnsignedTail bool, progress func(done, total uint64)) Verdict {
	v := Verdict{Format: Format}
	in := Input{AllowUnsignedTail: allowUnsignedTail, Progress: progress}
	var err error
	if in.Trust, err = readSmall(trustPath, "trust file"); err != nil {
		return v.fail(StageInput, err)
	}
	if in.WitnessTrust, err = readSmall(witnessTrustPath, "witness trust file"); err != nil {
		return v.fail(StageInput, err)
	}
	f, err := os.Open(bundlePath)
	if err != nil {
		return v.fail(StageInput, fmt.Errorf("bundle %s: %s", bundlePath, describe(err)))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return v.fail(StageInput, fmt.Errorf("open bundle: %w", err))
	}
	in.Bundle, in.Size = f, fi.Size()
	return Run(ctx, in)
}

// describe says why a file cannot be opened in words that do not depend
// on the platform (wasip1 and Linux spell errno differently).
func describe(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}

func (v Verdict) fail(stage string, err error) Verdict {
	v.OK, v.Stage, v.Error = false, stage, err.Error()
	return v
}

// readSmall reads a file of at most MaxTrustFile bytes; "" reads nothing.
func readSmall(path, what string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %s", what, path, describe(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTrustFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(b) > MaxTrustFile {
		return nil, fmt.Errorf("%s %s is larger than %d bytes: not a trust file", what, path, MaxTrustFile)
	}
	return b, nil
}

func parseTrust(what string, b []byte) (*checkpoint.Trust, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxTrustFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a trust file", what, MaxTrustFile)
	}
	t, err := checkpoint.ParseTrust(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return t, nil
}

var (
	entryIdx   = regexp.MustCompile(`bundle entries\[(\d+)\]`)
	segIdx     = regexp.MustCompile(`bundle segments\[(\d+)\]`)
	receiptIdx = regexp.MustCompile(`^witness_receipts\[(\d+)\]`)
)

// locate reads the spot of an audit error: the *audit.Failure's seqno and
// segment id, and the array positions bundle.Audit appends to its message.
func locate(err error) *Spot {
	var s Spot
	var f *audit.Failure
	if errors.As(err, &f) {
		s.Seqno, s.SegmentID = f.Seqno, f.SegmentID
	}
	msg := err.Error()
	idx := func(re *regexp.Regexp) *uint64 {
		m := re.FindStringSubmatch(msg)
		if m == nil {
			return nil
		}
		n, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			return nil
		}
		return &n
	}
	s.EntryIndex, s.SegmentIndex, s.ReceiptIndex = idx(entryIdx), idx(segIdx), idx(receiptIdx)
	if s == (Spot{}) {
		return nil
	}
	return &s
}
