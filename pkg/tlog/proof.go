package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/wire"
)

// ProofHeader is the first line of a C2SP tlog-proof document.
const ProofHeader = "c2sp.org/tlog-proof@v1"

// MaxProofLines is the most inclusion proof hashes a proof may carry
// (a tree of at most 2^63 leaves).
const MaxProofLines = 63

// MaxProofSize caps a proof document (the extra data holds one entry, at
// most a 256 KiB payload plus its fields).
const MaxProofSize = 1 << 20

// Proof is a C2SP tlog-proof document: optional extra data, the leaf
// index, its inclusion proof and the checkpoint (a signed note, verbatim,
// with any cosignatures). securelog puts the entry's canonical CBOR
// encoding (SPEC §4.2) in Extra: its SHA-256 is the entry_hash, the leaf
// data.
type Proof struct {
	Extra      []byte
	Index      int64
	Path       tlog.RecordProof
	Checkpoint []byte
}

// Marshal returns the document:
//
//	c2sp.org/tlog-proof@v1
//	[extra <base64>]
//	index <decimal>
//	<base64 hash>...
//	(blank line)
//	<checkpoint note verbatim>
func (p Proof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(ProofHeader + "\n")
	if p.Extra != nil {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	fmt.Fprintf(&b, "index %d\n", p.Index)
	for _, h := range p.Path {
		b.WriteString(EncodeHash(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ProofError reports a malformed or failing proof document.
type ProofError struct{ Msg string }

func (e *ProofError) Error() string { return "tlog-proof: " + e.Msg }

func proofErr(format string, args ...any) error {
	return &ProofError{Msg: fmt.Sprintf(format, args...)}
}

// ParseProof parses a tlog-proof document strictly: the header line,
// optional canonical base64 extra, "index N" without leading zeroes, at
// most MaxProofLines canonical base64 hashes, a blank line and a checkpoint
// note (checked for form only; VerifyEntryProof checks signatures).
func ParseProof(b []byte) (Proof, error) {
	if len(b) > MaxProofSize {
		return Proof{}, proofErr("%d bytes, more than %d", len(b), MaxProofSize)
	}
	rest, ok := bytes.CutPrefix(b, []byte(ProofHeader+"\n"))
	if !ok {
		return Proof{}, proofErr("first line is not %q", ProofHeader)
	}
	line := func() (string, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		l := string(rest[:i])
		rest = rest[i+1:]
		return l, true
	}
	var p Proof
	l, ok := line()
	if !ok {
		return Proof{}, proofErr("truncated after the header")
	}
	if e, found := strings.CutPrefix(l, "extra "); found {
		x, err := base64.StdEncoding.Strict().DecodeString(e)
		if err != nil || base64.StdEncoding.EncodeToString(x) != e {
			return Proof{}, proofErr("extra is not canonical base64")
		}
		p.Extra = x
		if l, ok = line(); !ok {
			return Proof{}, proofErr("truncated after extra")
		}
	}
	is, found := strings.CutPrefix(l, "index ")
	n, err := strconv.ParseInt(is, 10, 64)
	if !found || err != nil || n < 0 || strconv.FormatInt(n, 10) != is {
		return Proof{}, proofErr("line %q is not \"index N\" (decimal, no leading zeroes)", l)
	}
	p.Index = n
	for {
		l, ok := line()
		if !ok {
			return Proof{}, proofErr("no blank line before the checkpoint")
		}
		if l == "" {
			break
		}
		if len(p.Path) == MaxProofLines {
			return Proof{}, proofErr("more than %d proof lines", MaxProofLines)
		}
		h, err := DecodeHash(l)
		if err != nil {
			return Proof{}, proofErr("proof line %d: %v", len(p.Path)+1, err)
		}
		p.Path = append(p.Path, h)
	}
	text, _, err := SplitNote(rest)
	if err != nil {
		return Proof{}, proofErr("checkpoint: %v", err)
	}
	if _, err := ParseCheckpoint(text); err != nil {
		return Proof{}, proofErr("checkpoint: %v", err)
	}
	p.Checkpoint = rest
	return p, nil
}

// ErrNotEntryProof is returned when a proof's extra data is not a
// securelog entry for its index.
var ErrNotEntryProof = errors.New("tlog-proof extra is not the entry at its index")

// VerifyEntryProof checks a securelog entry proof offline: the checkpoint
// is signed by the log key named origin (among verifiers, which may also
// hold witness cosignature verifiers: every known signature must verify),
// Extra is the canonical encoding of the entry with seqno Index+1, and the
// inclusion proof binds SHA-256(Extra) as leaf data to the checkpoint's
// root. It returns the entry, the checkpoint and the opened note (its Sigs
// are the verified signatures, for a witness policy).
func VerifyEntryProof(p Proof, origin string, verifiers note.Verifiers) (wire.EntryFields, Checkpoint, *note.Note, error) {
	ck, n, err := OpenCheckpoint(p.Checkpoint, origin, verifiers)
	if err != nil {
		return wire.EntryFields{}, Checkpoint{}, nil, proofErr("checkpoint: %v", err)
	}
	f, err := wire.DecodeEntry(p.Extra)
	if err != nil {
		return wire.EntryFields{}, Checkpoint{}, nil, fmt.Errorf("%w: %v", ErrNotEntryProof, err)
	}
	if f.Seqno != uint64(p.Index)+1 {
		return wire.EntryFields{}, Checkpoint{}, nil, fmt.Errorf("%w: entry seqno %d at index %d (want seqno index+1)", ErrNotEntryProof, f.Seqno, p.Index)
	}
	if p.Index >= ck.Size {
		return wire.EntryFields{}, Checkpoint{}, nil, proofErr("index %d is not in a tree of size %d", p.Index, ck.Size)
	}
	leafData := sha256.Sum256(p.Extra)
	if err := tlog.CheckRecord(p.Path, ck.Size, ck.Root, p.Index, tlog.RecordHash(leafData[:])); err != nil {
		return wire.EntryFields{}, Checkpoint{}, nil, proofErr("inclusion proof of index %d in tree size %d: %v", p.Index, ck.Size, err)
	}
	return f, ck, n, nil
}
