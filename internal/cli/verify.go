package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

func (a *app) verifyCmd() *cobra.Command {
	var allowUnsigned, progress, strict bool
	c := &cobra.Command{
		Use:   "verify STREAM --trust trust.json",
		Short: "Full audit of a stream: chain, segments, Merkle roots, signatures, head file",
		Long: `Recompute everything from the stored rows, trusting nothing the store says:
every entry hash and chain link; each segment's membership, range, Merkle root,
last entry hash and checkpoint linkage; every checkpoint signature against the
public keys of the trust file; and the head file's record. Exit 0 only if all hold;
otherwise exit 1 naming the first seqno or segment that does not.

What could not be checked is printed as "not covered: ..." lines: entries not yet
in a segment (no Merkle root or signature covers them), unsigned segments accepted
with --allow-unsigned-tail, and a missing head file or head-file record (then no
anti-rollback anchor was checked: a store restored from an older copy verifies).
With --strict any of these fails the command (exit 1).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.trustFile == "" && a.keysDir == "" {
				return usageErr("no trust file: pass --trust trust.json (made by 'securelog keys export')")
			}
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0], auditOnly: true})
			if err != nil {
				return err
			}
			defer closeFn()
			opts := audit.Options{AllowUnsignedTail: allowUnsigned}
			if a.trustFile != "" {
				t, err := checkpoint.LoadTrustFile(a.trustFile)
				if err != nil {
					return err
				}
				opts.Trust = t
			} else {
				opts.Trust = keystoreTrust{a}
			}
			rec, haveHead, err := l.HeadRecord(args[0])
			if err != nil {
				return err
			}
			if haveHead {
				opts.Head = &rec
			}
			if _, has, err := l.Head(cmd.Context(), args[0]); err != nil {
				return err
			} else if !has {
				return &wire.StreamNotFoundError{Stream: args[0]}
			}
			bar := a.newProgress(progress, "verify "+args[0])
			if bar != nil {
				opts.Progress = bar.count
			}
			rep, err := audit.Stream(cmd.Context(), audit.StoreSource{Store: l.Store()}, args[0], opts)
			bar.finish()
			if err != nil {
				return verifyFailed(fmt.Errorf("verify FAILED for stream %s: %w", args[0], err))
			}
			gaps := notCovered(rep, l.HeadFilePath() != "", haveHead)
			if strict && len(gaps) > 0 {
				return verifyFailed(fmt.Errorf("verify INCOMPLETE for stream %s (--strict): not covered: %s",
					args[0], strings.Join(gaps, "; ")))
			}
			if a.jsonOut {
				if gaps == nil {
					gaps = []string{}
				}
				return a.printJSON(map[string]any{"ok": true, "report": rep, "not_covered": gaps})
			}
			a.printf("verify OK: stream %s, %d entries (%d not yet in a segment), %d segments, %d signatures",
				rep.Stream, rep.Entries, rep.OpenEntries, rep.Segments, rep.Signed)
			if rep.HeadSegment != 0 {
				a.printf(", head file at segment %d", rep.HeadSegment)
			}
			a.printf("\n")
			for _, g := range gaps {
				a.printf("not covered: %s\n", g)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&allowUnsigned, "allow-unsigned-tail", false, "accept unsigned segments after the last signed one")
	c.Flags().BoolVar(&progress, "progress", false, "show progress on stderr even when it is not a terminal (it is shown on a terminal)")
	c.Flags().BoolVar(&strict, "strict", false, "fail (exit 1) when anything was not covered: unsealed entries, unsigned segments, no head file")
	return c
}

// notCovered lists what a successful audit could not check (issue 9 item
// 10): entries outside any segment, unsigned segments, and a missing
// anti-rollback anchor.
func notCovered(rep audit.Report, headFile, headRecord bool) []string {
	var gaps []string
	if rep.OpenEntries > 0 {
		gaps = append(gaps, fmt.Sprintf("%d %s not yet in a segment (no Merkle root or signature covers %s; close and sign a segment)",
			rep.OpenEntries, plural(rep.OpenEntries, "entry", "entries"), plural(rep.OpenEntries, "it", "them")))
	}
	if n := rep.Segments - rep.Signed; n > 0 {
		gaps = append(gaps, fmt.Sprintf("%d unsigned %s (accepted by --allow-unsigned-tail)", n, plural(uint64(n), "segment", "segments")))
	}
	switch {
	case !headFile:
		gaps = append(gaps, "no head file (pass --head-file): no anti-rollback anchor was checked, an older copy of the store would verify")
	case !headRecord && rep.Signed > 0:
		gaps = append(gaps, "no head-file record for this stream although it has signed segments: no anti-rollback anchor was checked")
	case !headRecord:
		gaps = append(gaps, "no head-file record for this stream (nothing signed yet): no anti-rollback anchor was checked")
	}
	return gaps
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// keystoreTrust verifies with the public keys of --keys (when no --trust).
type keystoreTrust struct{ a *app }

func (k keystoreTrust) Verify(identity string, msg, sig []byte) error {
	ks, err := k.a.keystore()
	if err != nil {
		return err
	}
	entries, err := trustEntries(ks)
	if err != nil {
		return err
	}
	t, err := checkpoint.NewTrust(entries...)
	if err != nil {
		return err
	}
	return t.Verify(identity, msg, sig)
}

func (a *app) exportCmd() *cobra.Command {
	var out, tlogURL string
	var progress, noTlog bool
	c := &cobra.Command{
		Use:   "export STREAM --out bundle.json",
		Short: "Write everything an auditor needs to verify a stream offline",
		Long: `Write a securelog-bundle/v1 JSON document: the stream's entry rows and segment rows
(each with its [seqno, leaf_index] membership) in the wire contract's shapes, the
trust objects of the signers used (from --trust or --keys), and the witness
cosignatures recorded in the store's witness log. Verify it with 'securelog audit'.

When the log keeps its RFC 6962 tree (a local --store, or --tlog-url for the node's
tiles API), the bundle also carries the latest witnessed C2SP checkpoint and an
inclusion proof of every exported entry inside it ("tlog" member; --no-tlog omits it).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("--out FILE is required")
			}
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0]})
			if err != nil {
				return err
			}
			defer closeFn()
			var trust []checkpoint.TrustEntry
			switch {
			case a.trustFile != "":
				t, err := checkpoint.LoadTrustFile(a.trustFile)
				if err != nil {
					return err
				}
				trust = t.Entries()
			case a.keysDir != "":
				ks, err := a.keystore()
				if err != nil {
					return err
				}
				if trust, err = trustEntries(ks); err != nil {
					return err
				}
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("create bundle: %w", err)
			}
			var receipts []witness.Receipt
			rows, err := l.Store().WitnessList(cmd.Context(), args[0])
			if err != nil {
				f.Close()
				os.Remove(out)
				return fmt.Errorf("witness cosignatures of %s: %w", args[0], err)
			}
			for _, r := range rows {
				receipts = append(receipts, witness.RowReceipt(r))
			}
			var src audit.Source = audit.StoreSource{Store: l.Store()}
			bar := a.newProgress(progress, "export "+args[0])
			if bar != nil {
				src = countingSource{Source: src, progress: bar.count}
			}
			var wo bundle.WriteOptions
			if !noTlog {
				if wo.Tlog, err = a.exportTlog(cmd.Context(), l.Store(), tlogURL); err != nil {
					f.Close()
					os.Remove(out)
					return err
				}
			}
			n, err := bundle.WriteWith(cmd.Context(), f, src, args[0], trust, receipts, wo)
			bar.finish()
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out)
				return fmt.Errorf("export %s: %w", args[0], err)
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"stream": args[0], "entries": n.Entries, "segments": n.Segments, "out": out})
			}
			a.printf("exported stream %s: %d entries, %d segments to %s\n", args[0], n.Entries, n.Segments, out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "bundle file to write")
	c.Flags().StringVar(&tlogURL, "tlog-url", "", "the node's tlog-tiles URL prefix (/checkpoint and /tile/) for the bundle's C2SP checkpoint and proofs (default: a local store's tree)")
	c.Flags().BoolVar(&noTlog, "no-tlog", false, "do not add the C2SP checkpoint and inclusion proofs")
	c.Flags().BoolVar(&progress, "progress", false, "show progress on stderr even when it is not a terminal (it is shown on a terminal)")
	return c
}

// countingSource reports every entry read from the wrapped source.
type countingSource struct {
	audit.Source
	progress func(entries uint64)
}

// Entries passes the rows on and reports their running count.
func (c countingSource) Entries(ctx context.Context, stream string, fn func(wire.EntryRow) error) error {
	var n uint64
	return c.Source.Entries(ctx, stream, func(r wire.EntryRow) error {
		n++
		c.progress(n)
		return fn(r)
	})
}
