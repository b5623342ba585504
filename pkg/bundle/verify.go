package bundle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Trust sources reported in AuditReport.TrustSource.
const (
	// TrustFromOptions means the caller supplied the public keys (a trust
	// file obtained independently of the bundle).
	TrustFromOptions = "trust-file"
	// TrustFromBundle means the bundle's own "trust" array was used: that
	// proves only that the bundle is self-consistent, since whoever can
	// rewrite the bundle can also replace its keys.
	TrustFromBundle = "bundle"
)

// AuditOptions configures Audit.
type AuditOptions struct {
	// Trust holds the signers' public keys; nil uses the bundle's own
	// trust array (self-consistency only).
	Trust *checkpoint.Trust
	// WitnessTrust holds the witnesses' Ed25519 public keys; nil leaves
	// cosignatures unverified (reported in AuditReport).
	WitnessTrust *checkpoint.Trust
	// KEK, if set, decrypts every sealed payload of the stream's segments.
	KEK []byte
	// AllowUnsignedTail accepts unsigned segments after the last signed one.
	AllowUnsignedTail bool
	// Progress, if set, is called as entries are verified with the count so
	// far and the bundle's total.
	Progress func(done, total uint64)
	// TlogWitnesses and TlogQuorum are the witness policy the bundle's
	// C2SP checkpoint must satisfy (tlogwitness.Policy; none: the log's
	// signature alone, by the trust's vkey named after its origin).
	TlogWitnesses []note.Verifier
	TlogQuorum    int
	// Now is the clock for cosignature timestamps (time.Now if nil).
	Now func() time.Time
}

// AuditReport summarises a bundle that audits.
type AuditReport struct {
	audit.Report
	// TrustSource is TrustFromOptions or TrustFromBundle.
	TrustSource string `json:"trust_source"`
	// Signers are the identities whose keys the trust used holds.
	Signers []string `json:"trust_identities"`
	// Receipts is the number of witness receipts in the bundle.
	Receipts int `json:"witness_receipts"`
	// CosignaturesVerified counts receipts whose cosignature verified.
	CosignaturesVerified int `json:"cosignatures_verified"`
	// Witnesses are the witness identities whose cosignatures verified.
	Witnesses []string `json:"witnesses,omitempty"`
	// Sealed counts entries with a sealed payload.
	Sealed uint64 `json:"sealed_entries"`
	// Decrypted counts sealed payloads that decrypted with the KEK.
	Decrypted uint64 `json:"decrypted"`
	// SealedOpen counts sealed entries after the last segment: their key
	// depends on a segment id not fixed yet, so they are not decrypted.
	SealedOpen uint64 `json:"sealed_not_in_segment"`
	// TlogOrigin and TlogSize are the bundle's verified C2SP checkpoint
	// (empty and 0 when the bundle has none), TlogCosigners its policy
	// witnesses' cosignatures, TlogProved the entries proved inside it and
	// TlogOutside the entries after it.
	TlogOrigin    string   `json:"tlog_origin,omitempty"`
	TlogSize      int64    `json:"tlog_size,omitempty"`
	TlogCosigners []string `json:"tlog_cosigners,omitempty"`
	TlogProved    uint64   `json:"tlog_entries_proved,omitempty"`
	TlogOutside   uint64   `json:"tlog_entries_after_checkpoint,omitempty"`
}

// sealedTiers are the tiers that seal payloads; the bundle does not record
// the stream's tier, so decryption tries each (the AEAD authenticates the
// tier through its AAD, so only the right one opens).
var sealedTiers = []string{seal.TierProtected, seal.TierHighlyRestricted}

// Audit verifies the bundle read by r with nothing else: every entry hash
// and chain link, each segment's membership, range, Merkle root, last entry
// hash and checkpoint linkage, every checkpoint signature, every witness
// receipt (checkpoint hash equal to the audited one and, with
// WitnessTrust, its cosignature), and with a KEK every sealed payload. The
// first failure is returned naming its spot (entries[i], seqno, segment id
// and segments[i], trust identity, witness_receipts[i]).
func Audit(ctx context.Context, r *Reader, opts AuditOptions) (AuditReport, error) {
	var rep AuditReport
	trust := opts.Trust
	rep.TrustSource = TrustFromOptions
	if trust == nil {
		rep.TrustSource = TrustFromBundle
		t, err := checkpoint.NewTrust(r.Trust()...)
		if err != nil {
			return rep, fmt.Errorf("bundle trust: %w", err)
		}
		trust = t
	}
	for _, e := range trust.Entries() {
		rep.Signers = append(rep.Signers, e.Identity)
	}
	tl, err := startTlog(r, trust, opts, &rep)
	if err != nil {
		return rep, err
	}
	src := &auditSource{Reader: r, opts: opts, rep: &rep, tlog: tl}
	ar, err := audit.Stream(ctx, r, r.Stream(), audit.Options{
		Trust:             trust,
		AllowUnsignedTail: opts.AllowUnsignedTail,
		Entry:             src.entry,
		Verified:          src.verified,
		Progress: func(n uint64) {
			if opts.Progress != nil && (n&4095 == 0 || n == r.EntryCount()) {
				opts.Progress(n, r.EntryCount())
			}
		},
	})
	rep.Report = ar
	if err != nil {
		return rep, src.locate(err)
	}
	if src.decryptErr != nil {
		return rep, src.decryptErr
	}
	if tl != nil {
		if err := tl.finish(&rep, opts.AllowUnsignedTail); err != nil {
			return rep, src.locate(err)
		}
	}
	if err := verifyReceipts(r, opts.WitnessTrust, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// auditSource tracks the entry being audited to name it in failures and
// decrypts sealed payloads on the way.
type auditSource struct {
	*Reader
	opts       AuditOptions
	rep        *AuditReport
	index      uint64 // index of the last entry handed to the audit
	next       uint64 // index of the next entry
	lastSeqno  uint64
	decryptErr error
	tlog       *tlogAudit // nil: the bundle has no "tlog" member
}

// entry records the entry about to be checked, to name it in a failure.
func (s *auditSource) entry(row *wire.EntryRow) {
	s.index, s.lastSeqno = s.next, row.Seqno
	s.next++
}

// verified handles an entry that passed the audit's checks.
func (s *auditSource) verified(row *wire.EntryRow) {
	if s.tlog != nil {
		s.tlog.entry(row)
	}
	if row.PayloadEncoding == wire.AEADEncoding {
		s.sealed(row)
	}
}

// sealed counts and, with a KEK, decrypts one sealed entry. The first
// failure is kept and reported only if the audit itself passes.
func (s *auditSource) sealed(row *wire.EntryRow) {
	s.rep.Sealed++
	if len(s.opts.KEK) == 0 || s.decryptErr != nil {
		return
	}
	segID, ok := s.SegmentForSeqno(row.Seqno)
	if !ok {
		s.rep.SealedOpen++
		return
	}
	var last error
	for _, tier := range sealedTiers {
		if _, err := seal.Open(s.opts.KEK, row.StreamID, tier, segID, row.Payload); err == nil {
			s.rep.Decrypted++
			return
		} else {
			last = err
		}
	}
	s.decryptErr = &audit.Failure{Seqno: row.Seqno, Reason: fmt.Sprintf(
		"sealed payload does not decrypt with this KEK (segment %d, tiers protected and highly-restricted tried): %v", segID, last), Err: last}
}

// locate adds the bundle position to an audit failure.
func (s *auditSource) locate(err error) error {
	var f *audit.Failure
	if !errors.As(err, &f) {
		return err
	}
	if f.SegmentID != 0 {
		if i, ok := s.SegmentIndex(f.SegmentID); ok {
			return fmt.Errorf("%w (bundle segments[%d])", err, i)
		}
		return err
	}
	if f.Seqno != 0 && f.Seqno == s.lastSeqno {
		return fmt.Errorf("%w (bundle entries[%d])", err, s.index)
	}
	return err
}

// verifyReceipts checks each witness receipt against the audited
// checkpoints and, with wt, its Ed25519 cosignature over the 32-byte
// checkpoint hash.
func verifyReceipts(r *Reader, wt *checkpoint.Trust, rep *AuditReport) error {
	witnesses := map[string]bool{}
	for i, rc := range r.Receipts() {
		rep.Receipts++
		spot := fmt.Sprintf("witness_receipts[%d] (witness %q, segment %d)", i, rc.WitnessIdentity, rc.SegmentID)
		if rc.StreamID != r.Stream() {
			return fmt.Errorf("%s: stream_id %q is not the bundle's stream %q", spot, rc.StreamID, r.Stream())
		}
		want, ok := rep.Checkpoints[rc.SegmentID]
		if !ok {
			return fmt.Errorf("%s: segment_id %d is not a segment of the bundle", spot, rc.SegmentID)
		}
		if rc.CheckpointHashHex != want {
			return fmt.Errorf("%s: checkpoint_hash_hex %s is not the audited checkpoint hash %s", spot, rc.CheckpointHashHex, want)
		}
		if !rc.Accepted || (rc.Status != "" && rc.Status != "accepted") {
			return fmt.Errorf("%s: receipt is not an acceptance (accepted=%v, status %q)", spot, rc.Accepted, rc.Status)
		}
		if wt == nil {
			continue
		}
		if err := VerifyCosignature(wt, rc); err != nil {
			return fmt.Errorf("%s: %w", spot, err)
		}
		rep.CosignaturesVerified++
		witnesses[rc.WitnessIdentity] = true
	}
	for w := range witnesses {
		rep.Witnesses = append(rep.Witnesses, w)
	}
	sort.Strings(rep.Witnesses)
	return nil
}

// VerifyCosignature checks a receipt's cosignature: the witness identity
// must be in wt with an Ed25519 key, and cosignature_hex must be that key's
// signature over the 32-byte checkpoint hash of checkpoint_hash_hex.
func VerifyCosignature(wt *checkpoint.Trust, rc witness.Receipt) error {
	return witness.VerifyCosignature(wt, rc)
}
