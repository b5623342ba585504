package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

// segmentJSON is the CLI's JSON view of a segment (hashes as hex).
type segmentJSON struct {
	SegmentID          uint64   `json:"segment_id"`
	StreamID           string   `json:"stream_id"`
	SeqStart           uint64   `json:"seq_start"`
	SeqEnd             uint64   `json:"seq_end"`
	MerkleRoot         wire.Hex `json:"merkle_root"`
	LastEntryHash      wire.Hex `json:"last_entry_hash"`
	PrevCheckpointHash wire.Hex `json:"prev_checkpoint_hash"`
	ClosedAt           string   `json:"closed_at_rfc3339"`
	Signature          wire.Hex `json:"signature,omitempty"`
	SignerIdentity     *string  `json:"signer_identity"`
}

func toSegmentJSON(s wire.SegmentRow) segmentJSON {
	return segmentJSON{s.SegmentID, s.StreamID, s.SeqStart, s.SeqEnd, s.MerkleRoot, s.LastEntryHash,
		s.PrevCheckpointHash, s.ClosedAt, s.Signature, s.SignerIdentity}
}

func (a *app) printSegment(s wire.SegmentRow) error {
	if a.jsonOut {
		return a.printJSON(toSegmentJSON(s))
	}
	signed := "unsigned"
	if s.Signed() {
		signed = "signed by " + s.Signer()
	}
	a.printf("segment %d stream %s seqno %d..%d root %x closed %s %s\n",
		s.SegmentID, s.StreamID, s.SeqStart, s.SeqEnd, s.MerkleRoot, s.ClosedAt, signed)
	return nil
}

func parseSegmentID(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, usageErr("invalid segment id %q: want a positive integer", s)
	}
	return v, nil
}

func (a *app) closeSegmentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "close-segment STREAM",
		Short: "Seal the stream's entries since its last segment under a Merkle root",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0]})
			if err != nil {
				return err
			}
			defer closeFn()
			seg, err := l.CloseSegment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printSegment(seg)
		},
	}
}

func (a *app) segmentsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "segments STREAM",
		Short: "List the segments of a stream",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0]})
			if err != nil {
				return err
			}
			defer closeFn()
			segs, err := l.ListSegments(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				out := make([]segmentJSON, len(segs))
				for i, s := range segs {
					out[i] = toSegmentJSON(s)
				}
				return a.printJSON(out)
			}
			for _, s := range segs {
				_ = a.printSegment(s)
			}
			return nil
		},
	}
}

func (a *app) signSegmentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sign-segment IDENTITY SEGMENT_ID",
		Short: "Sign a segment's checkpoint with the key of IDENTITY from --keys",
		Long: `Recompute the segment's checkpoint hash, sign it with the keystore key labelled
IDENTITY, store the signature and advance the head file. Refuses to sign when the
store has been rolled back behind the head file.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseSegmentID(args[1])
			if err != nil {
				return err
			}
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{signer: true})
			if err != nil {
				return err
			}
			defer closeFn()
			h, sig, err := l.SignSegment(cmd.Context(), args[0], id)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"segment_id": id, "checkpoint_hash": wire.Hex(h), "signature": wire.Hex(sig), "signer_identity": args[0]})
			}
			a.printf("segment %d signed by %s\ncheckpoint_hash %x\nsignature %x\n", id, args[0], h, sig)
			return nil
		},
	}
}

func (a *app) checkpointCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint SEGMENT_ID",
		Short: "Print a segment's recomputed checkpoint fields and hash",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseSegmentID(args[0])
			if err != nil {
				return err
			}
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{})
			if err != nil {
				return err
			}
			defer closeFn()
			_, f, h, err := l.Checkpoint(cmd.Context(), id)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"checkpoint": toCheckpointView(f), "checkpoint_hash": wire.Hex(h)})
			}
			a.printf("checkpoint of segment %d (stream %s, seqno %d..%d)\n", f.SegmentID, f.StreamID, f.SeqStart, f.SeqEnd)
			a.printf("version %d\nmerkle_root %x\nlast_entry_hash %x\nprev_checkpoint_hash %x\nboot_id %s\nsession_id %s\npolicy_hash %x\ntimestamp %s\ncheckpoint_hash %x\n",
				f.Version, f.MerkleRoot, f.LastEntryHash, f.PrevCheckpointHash, f.BootID, f.SessionID, f.PolicyHash, f.Timestamp, h)
			return nil
		},
	}
}

// proofFile is what `prove --json` prints and `verify-proof` reads: the
// proof plus the entry itself, so the verifier recomputes the leaf from the
// entry's canonical bytes instead of trusting entry_hash (DECISIONS 1).
type proofFile struct {
	securelog.InclusionProof
	Entry *proofEntry `json:"entry,omitempty"`
}

func (a *app) proveCmd() *cobra.Command {
	var tf tlogFlags
	var inTlog, c2sp bool
	c := &cobra.Command{
		Use:   "prove SEQNO [--tlog | --c2sp]",
		Short: "Build the inclusion proof of an entry in its segment (--tlog: in the transparency tree; --c2sp: a C2SP tlog-proof)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqno, err := parseSeqno(args[0])
			if err != nil {
				return err
			}
			if inTlog || c2sp {
				return a.proveTlog(cmd, seqno, &tf, c2sp)
			}
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{})
			if err != nil {
				return err
			}
			defer closeFn()
			p, err := l.BuildInclusionProof(cmd.Context(), seqno)
			var nf *wire.EntryNotFoundError
			if errors.As(err, &nf) && nf.Seqno == seqno {
				if row, rerr := l.Read(cmd.Context(), seqno); rerr == nil {
					return fmt.Errorf("seqno %d (stream %s) is not in a closed segment yet: run close-segment %s first (%w)", seqno, row.StreamID, row.StreamID, err)
				}
			}
			if err != nil {
				return err
			}
			row, err := l.Read(cmd.Context(), seqno)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(proofFile{p, &proofEntry{row}})
			}
			a.printf("seqno %d segment %d leaf %d of %d root %x (%d steps)\n", p.Seqno, p.SegmentID, p.LeafIndex, p.TreeSize, p.MerkleRoot, len(p.Path))
			return nil
		},
	}
	c.Flags().BoolVar(&inTlog, "tlog", false, "prove inclusion in the transparency tree against the latest checkpoint")
	c.Flags().BoolVar(&c2sp, "c2sp", false, "write a C2SP tlog-proof document (checkpoint, index, proof, the entry) for 'verify-proof'")
	tf.add(c)
	return c
}

func (a *app) verifyProofCmd() *cobra.Command {
	var rootHex string
	var tf tlogFlags
	c := &cobra.Command{
		Use:   "verify-proof PROOF.json --root HEX | verify-proof PROOF.tlog-proof --trust trust.json",
		Short: "Verify an inclusion proof (from 'prove --json') against a Merkle root, or a C2SP tlog-proof (from 'prove --c2sp') with the log's vkey",
		Long: `Check that the proof's path, with exactly the shape implied by its leaf_index and
tree_size, leads from the entry to --root. If the proof carries the entry, the leaf
is recomputed from the entry's canonical bytes. Needs no store.

A proof without leaf_index and tree_size (the reference implementation's shape) is
checked against the root only: the output says that the check was weaker (the leaf's
position and the tree size are not bound) and gives the leaf index its path implies.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read proof: %w", err)
			}
			if isC2SPProof(data) {
				return a.verifyC2SPProof(data, &tf)
			}
			if rootHex == "" {
				return usageErr("--root is required for a proof from 'prove --json'")
			}
			root, err := wire.ParseHash32(rootHex)
			if err != nil {
				return usageErr("--root: %v", err)
			}
			var p proofFile
			if err := json.Unmarshal(data, &p); err != nil {
				return fmt.Errorf("proof %s: %w", args[0], err)
			}
			if p.Entry != nil {
				if p.Entry.Seqno != p.Seqno {
					return fmt.Errorf("proof is for seqno %d but carries entry %d", p.Seqno, p.Entry.Seqno)
				}
				if h := chain.RowHash(p.Entry.EntryRow); string(h) != string(p.EntryHash) {
					return fmt.Errorf("entry %d does not hash to the proof's entry_hash: recomputed %x", p.Seqno, h)
				}
			}
			if p.TreeSize == 0 {
				// A reference-shaped proof (SPEC §3.7): no leaf_index and
				// tree_size (a real tree has at least one leaf). Check the
				// root only, and say what was not checked.
				return a.verifyUnboundProof(p, root)
			}
			if err := securelog.VerifyInclusionProof(p.InclusionProof, root); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"seqno": p.Seqno, "segment_id": p.SegmentID, "ok": true, "position_checked": true})
			}
			a.printf("proof OK: seqno %d is leaf %d of %d under root %x\n", p.Seqno, p.LeafIndex, p.TreeSize, root)
			return nil
		},
	}
	c.Flags().StringVar(&rootHex, "root", "", "expected Merkle root (64 hex characters), e.g. from a signed checkpoint")
	tf.add(c)
	return c
}

// verifyUnboundProof checks a proof without leaf_index/tree_size by its
// root alone (merkle.VerifyUnbound) and reports the weaker check.
func (a *app) verifyUnboundProof(p proofFile, root []byte) error {
	if len(p.MerkleRoot) != wire.HashLen {
		return wire.Invalidf("hash is not 32 bytes")
	}
	idx, err := merkle.VerifyUnbound(p.EntryHash, p.Path, root)
	if err != nil {
		var inv *wire.InvalidError
		if errors.As(err, &inv) {
			return err
		}
		return &wire.InclusionMismatchError{Seqno: p.Seqno, SegmentID: p.SegmentID}
	}
	leaf := "entry_hash"
	if p.Entry != nil {
		leaf = "the entry's recomputed hash"
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"seqno": p.Seqno, "segment_id": p.SegmentID, "ok": true,
			"position_checked": false, "leaf_index_from_path": idx})
	}
	a.printf("proof OK (weaker check): seqno %d: the path leads from %s to root %x\n", p.Seqno, leaf, root)
	a.printf("  the proof has no leaf_index/tree_size, so the leaf's position and the tree size were not checked; its path implies leaf %d (if no level was promoted)\n", idx)
	return nil
}
