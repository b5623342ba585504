package bundle

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/wire"
)

// The optional "tlog" member (after "witness_receipts") carries the log's
// C2SP view: its latest (cosigned) checkpoint and, for every exported
// entry inside it, the RFC 6962 inclusion proof of the entry's leaf
// (leaf index seqno−1, leaf data its entry_hash), in entry order:
//
//	"tlog":{"checkpoint":"<signed note>",
//	        "proofs":[{"seqno":N,"proof":["<base64 hash>",...]},...]}
//
// A bundle written without it is byte-for-byte what it was before.

// Tlog is what WriteWith needs to add the "tlog" member.
type Tlog struct {
	// Checkpoint is the signed checkpoint note (with its cosignatures).
	Checkpoint []byte
	// Hashes reads the log's tree hashes (tlog.TileHashes over a store's
	// tiles, or x/mod's TileHashReader over the tiles API).
	Hashes sumtlog.HashReader
}

// WriteOptions are the optional parts of a bundle.
type WriteOptions struct {
	// Tlog, if set, adds the "tlog" member.
	Tlog *Tlog
}

// tlogProof is one element of "proofs".
type tlogProof struct {
	Seqno uint64   `json:"seqno"`
	Proof []string `json:"proof"`
}

// writeTlog writes `,"tlog":{...}`: a second pass over the stream's
// entries proves each one inside the checkpoint.
func writeTlog(ctx context.Context, bw *bufio.Writer, src audit.Source, stream string, t *Tlog) error {
	text, _, err := tlog.SplitNote(t.Checkpoint)
	if err != nil {
		return fmt.Errorf("tlog checkpoint: %w", err)
	}
	ck, err := tlog.ParseCheckpoint(text)
	if err != nil {
		return fmt.Errorf("tlog checkpoint: %w", err)
	}
	nb, _ := json.Marshal(string(t.Checkpoint))
	fmt.Fprintf(bw, `,"tlog":{"checkpoint":%s,"proofs":[`, nb)
	first := true
	err = src.Entries(ctx, stream, func(r wire.EntryRow) error {
		if r.Seqno == 0 || int64(r.Seqno) > ck.Size {
			return nil
		}
		p, err := sumtlog.ProveRecord(ck.Size, int64(r.Seqno)-1, t.Hashes)
		if err != nil {
			return fmt.Errorf("inclusion proof of seqno %d in the tree of size %d: %w", r.Seqno, ck.Size, err)
		}
		row := tlogProof{Seqno: r.Seqno, Proof: make([]string, len(p))}
		for i, h := range p {
			row.Proof[i] = base64.StdEncoding.EncodeToString(h[:])
		}
		b, _ := json.Marshal(row)
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteString("\n")
		bw.Write(b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tlog proofs: %w", err)
	}
	bw.WriteString("\n]}")
	return nil
}

// readTlog reads the "tlog" member (dec's offset 0 is file offset base):
// the checkpoint, and where the proofs
// start (they are re-read while auditing).
func (r *Reader) readTlog(dec *json.Decoder, base int64) error {
	if err := expectDelim(dec, '{', "bundle: tlog"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("bundle: tlog member name: %w", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("bundle: tlog: member %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "checkpoint":
			var s string
			if err := dec.Decode(&s); err != nil {
				return fmt.Errorf("bundle: tlog.checkpoint: %w", err)
			}
			r.tlogNote = []byte(s)
		case "proofs":
			if err := expectDelim(dec, '[', "bundle: tlog.proofs"); err != nil {
				return err
			}
			r.proofsOff = base + dec.InputOffset()
			for dec.More() {
				var p tlogProof
				if err := dec.Decode(&p); err != nil {
					return fmt.Errorf("bundle: tlog.proofs[%d]: %w", r.proofs, err)
				}
				r.proofs++
			}
			if err := expectDelim(dec, ']', "bundle: tlog.proofs"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("bundle: tlog: unknown member %q", key)
		}
	}
	if !seen["checkpoint"] || !seen["proofs"] {
		return errors.New(`bundle: tlog needs "checkpoint" and "proofs"`)
	}
	return expectDelim(dec, '}', "bundle: tlog")
}

// TlogCheckpoint returns the bundle's C2SP checkpoint note (nil: none).
func (r *Reader) TlogCheckpoint() []byte { return r.tlogNote }

// tlogAudit checks the entries against the bundle's checkpoint as the
// audit verifies them, in lockstep with the proofs.
type tlogAudit struct {
	ck      tlog.Checkpoint
	dec     *json.Decoder
	read    uint64 // proofs read
	proved  uint64
	outside uint64 // entries after the checkpoint
	err     error  // the first failure
}

// startTlog verifies the bundle's checkpoint with the trust's log vkey
// (the one named after its origin) and the witness policy, and opens the
// proofs. It returns nil when the bundle has no "tlog" member.
func startTlog(r *Reader, trust *checkpoint.Trust, opts AuditOptions, rep *AuditReport) (*tlogAudit, error) {
	if r.tlogNote == nil {
		return nil, nil
	}
	text, _, err := tlog.SplitNote(r.tlogNote)
	if err != nil {
		return nil, fmt.Errorf("bundle: tlog.checkpoint: %w", err)
	}
	ck, err := tlog.ParseCheckpoint(text)
	if err != nil {
		return nil, fmt.Errorf("bundle: tlog.checkpoint: %w", err)
	}
	var logV note.Verifier
	for _, e := range trust.Entries() {
		if e.VKey == "" {
			continue
		}
		if v, err := note.NewVerifier(e.VKey); err == nil && v.Name() == ck.Origin {
			logV = v
			break
		}
	}
	if logV == nil {
		return nil, fmt.Errorf("bundle: tlog.checkpoint: the trust has no vkey named after its origin %q (export the trust file with 'securelog keys export')", ck.Origin)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cv := tlogwitness.CheckpointVerifier{Origin: ck.Origin, Log: logV, Policy: tlogwitness.Policy{Witnesses: opts.TlogWitnesses, Quorum: opts.TlogQuorum}}
	if err := cv.Policy.Validate(); err != nil {
		return nil, err
	}
	v, err := cv.Verify(r.tlogNote, now())
	if err != nil {
		return nil, fmt.Errorf("bundle: tlog.checkpoint: %w", err)
	}
	rep.TlogOrigin, rep.TlogSize = ck.Origin, ck.Size
	for _, c := range v.Cosignatures {
		rep.TlogCosigners = append(rep.TlogCosigners, c.Witness)
	}
	src := io.MultiReader(strings.NewReader("["), io.NewSectionReader(r.ra, r.proofsOff, r.size-r.proofsOff))
	dec := json.NewDecoder(bufio.NewReaderSize(src, 1<<20))
	if err := expectDelim(dec, '[', "bundle: tlog.proofs"); err != nil {
		return nil, err
	}
	return &tlogAudit{ck: ck, dec: dec}, nil
}

// entry checks one verified entry: inside the checkpoint, the next proof
// must be its and prove its entry_hash at leaf seqno−1.
func (t *tlogAudit) entry(row *wire.EntryRow) {
	if t.err != nil {
		return
	}
	if int64(row.Seqno) > t.ck.Size {
		t.outside++
		return
	}
	fail := func(format string, args ...any) {
		t.err = &audit.Failure{Seqno: row.Seqno, Reason: "tlog: " + fmt.Sprintf(format, args...)}
	}
	if !t.dec.More() {
		fail("no inclusion proof for this entry (tree size %d): tlog.proofs has %d", t.ck.Size, t.read)
		return
	}
	var p tlogProof
	if err := t.dec.Decode(&p); err != nil {
		fail("tlog.proofs[%d]: %v", t.read, err)
		return
	}
	t.read++
	if p.Seqno != row.Seqno {
		fail("tlog.proofs[%d] is for seqno %d", t.read-1, p.Seqno)
		return
	}
	proof := make(sumtlog.RecordProof, len(p.Proof))
	for i, s := range p.Proof {
		h, err := tlog.DecodeHash(s)
		if err != nil {
			fail("tlog.proofs[%d].proof[%d]: %v", t.read-1, i, err)
			return
		}
		proof[i] = h
	}
	if err := sumtlog.CheckRecord(proof, t.ck.Size, t.ck.Root, int64(row.Seqno)-1, sumtlog.RecordHash(row.EntryHash)); err != nil {
		fail("entry_hash is not leaf %d of the checkpoint's tree (size %d): %v", row.Seqno-1, t.ck.Size, err)
		return
	}
	t.proved++
}

// finish reports the result once every entry was seen.
func (t *tlogAudit) finish(rep *AuditReport, allowTail bool) error {
	rep.TlogProved, rep.TlogOutside = t.proved, t.outside
	if t.err != nil {
		return t.err
	}
	if t.dec.More() {
		return fmt.Errorf("bundle: tlog.proofs[%d]: a proof for no exported entry of the checkpoint", t.read)
	}
	if t.outside > 0 && !allowTail {
		return fmt.Errorf("bundle: %d exported entries are after the tlog checkpoint (tree size %d): not every entry is in it (--allow-unsigned-tail accepts a tail)", t.outside, t.ck.Size)
	}
	return nil
}
