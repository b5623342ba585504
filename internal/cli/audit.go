package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/tlogwitness"
)

func init() { extraCommands = append(extraCommands, (*app).auditCmd) }

// auditJSON is what `audit --json` prints.
type auditJSON struct {
	OK         bool                `json:"ok"`
	Bundle     string              `json:"bundle"`
	Error      string              `json:"error,omitempty"`
	TrustFile  string              `json:"trust_file,omitempty"`
	TrustNote  string              `json:"trust_note,omitempty"`
	Report     *bundle.AuditReport `json:"report,omitempty"`
	WitnessOff bool                `json:"cosignatures_unverified,omitempty"`
}

const selfTrustNote = "the bundle's own trust array was used: this proves only that the bundle is self-consistent " +
	"(whoever can rewrite the bundle can replace its keys); pass --trust with independently obtained public keys to prove authenticity"

func (a *app) auditCmd() *cobra.Command {
	var witnessTrust string
	var progress, allowUnsigned bool
	var tf tlogFlags
	c := &cobra.Command{
		Use:   "audit BUNDLE [--trust trust.json] [--witness-trust witnesses.json] [--kek FILE] [--json]",
		Short: "Verify an exported bundle offline: chain, segments, Merkle roots, signatures, cosignatures",
		Long: `Verify a securelog-bundle/v1 file (from 'securelog export') with nothing else: every
entry hash and chain link; each segment's membership, range, Merkle root, last entry
hash and checkpoint linkage; every checkpoint signature; every witness receipt
(its checkpoint hash must be the audited one, and with --witness-trust its Ed25519
cosignature must verify); and with --kek every sealed payload must decrypt.

Signatures are checked against --trust if given, else against the bundle's own
"trust" array, which proves only self-consistency (the output says which was used).
Entries are streamed: memory does not grow with the bundle. Exit 0 only if all
holds; otherwise exit 1 naming the entry (entries[i], seqno), segment, trust
identity or receipt that does not.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			var opts bundle.AuditOptions
			opts.AllowUnsignedTail = allowUnsigned
			if a.trustFile != "" {
				t, err := checkpoint.LoadTrustFile(a.trustFile)
				if err != nil {
					return usageErr("--trust: %v", err)
				}
				opts.Trust = t
			}
			if witnessTrust != "" {
				t, err := checkpoint.LoadTrustFile(witnessTrust)
				if err != nil {
					return usageErr("--witness-trust: %v", err)
				}
				opts.WitnessTrust = t
			}
			for _, w := range tf.witnesses {
				v, err := tlogwitness.NewVerifier(w)
				if err != nil {
					return usageErr("--witness-vkey %q: %v", w, err)
				}
				opts.TlogWitnesses = append(opts.TlogWitnesses, v)
			}
			opts.TlogQuorum = tf.quorum
			if a.kekFile != "" {
				k, err := seal.LoadKEK(a.kekFile)
				if err != nil {
					return usageErr("--kek: %v", err)
				}
				opts.KEK = k
			}
			bar := a.newProgress(progress, "audit "+path)
			if bar != nil {
				opts.Progress = bar.update
			}
			rep, err := a.auditBundle(cmd, path, opts)
			bar.finish()
			out := auditJSON{OK: err == nil, Bundle: path, TrustFile: a.trustFile, WitnessOff: witnessTrust == ""}
			if rep.TrustSource == bundle.TrustFromBundle {
				out.TrustNote = selfTrustNote
			}
			if err != nil {
				out.Error = err.Error()
				if a.jsonOut {
					_ = a.printJSON(out)
				}
				return verifyFailed(fmt.Errorf("audit FAILED: %s: %w", path, err))
			}
			if a.jsonOut {
				out.Report = &rep
				return a.printJSON(out)
			}
			a.printAuditReport(path, rep, witnessTrust != "", len(opts.KEK) > 0)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&witnessTrust, "witness-trust", "", "witness trust file: JSON list of {identity, algorithm: ed25519, public_key}")
	f.BoolVar(&progress, "progress", false, "show a progress bar on stderr even when it is not a terminal")
	f.BoolVar(&allowUnsigned, "allow-unsigned-tail", false, "accept unsigned segments after the last signed one (and entries after the bundle's C2SP checkpoint)")
	f.StringSliceVar(&tf.witnesses, "witness-vkey", nil, "a tlog-witness's cosignature vkey: the bundle's C2SP checkpoint must carry the policy's cosignatures (repeatable)")
	f.IntVar(&tf.quorum, "witness-quorum", 0, "cosignatures by --witness-vkey witnesses required (default: all of them)")
	return c
}

func (a *app) auditBundle(cmd *cobra.Command, path string, opts bundle.AuditOptions) (bundle.AuditReport, error) {
	r, err := bundle.Open(path)
	if err != nil {
		return bundle.AuditReport{}, err
	}
	defer r.Close()
	return bundle.Audit(cmd.Context(), r, opts)
}

func (a *app) printAuditReport(path string, rep bundle.AuditReport, witnesses, kek bool) {
	a.printf("audit OK: %s (stream %s)\n", path, rep.Stream)
	a.printf("  entries:     %d verified (chain and hashes), %d after the last segment\n", rep.Entries, rep.OpenEntries)
	a.printf("  segments:    %d (membership, Merkle roots, checkpoint chain), %d signatures verified\n", rep.Segments, rep.Signed)
	if rep.LastCheckpoint != "" {
		a.printf("  checkpoint:  last %s\n", rep.LastCheckpoint)
	}
	if rep.TrustSource == bundle.TrustFromOptions {
		a.printf("  trust:       %s (%s)\n", a.trustFile, strings.Join(rep.Signers, ", "))
	} else {
		a.printf("  trust:       BUNDLE'S OWN KEYS (%s)\n", strings.Join(rep.Signers, ", "))
		a.printf("               %s\n", selfTrustNote)
	}
	switch {
	case rep.Receipts == 0:
		a.printf("  witnesses:   no receipts in the bundle\n")
	case witnesses:
		a.printf("  witnesses:   %d receipts, %d cosignatures verified (%s)\n", rep.Receipts, rep.CosignaturesVerified, strings.Join(rep.Witnesses, ", "))
	default:
		a.printf("  witnesses:   %d receipts match the audited checkpoints; cosignatures NOT verified (pass --witness-trust)\n", rep.Receipts)
	}
	if rep.TlogSize > 0 {
		a.printf("  tlog:        C2SP checkpoint %s size %d, cosigned by [%s]; %d entries proved inside it", rep.TlogOrigin, rep.TlogSize,
			strings.Join(rep.TlogCosigners, ", "), rep.TlogProved)
		if rep.TlogOutside > 0 {
			a.printf(", %d after it", rep.TlogOutside)
		}
		a.printf("\n")
	}
	switch {
	case rep.Sealed == 0:
	case kek:
		a.printf("  sealed:      %d payloads, %d decrypted with the KEK", rep.Sealed, rep.Decrypted)
		if rep.SealedOpen > 0 {
			a.printf(", %d after the last segment not decryptable offline (segment id not fixed yet)", rep.SealedOpen)
		}
		a.printf("\n")
	default:
		a.printf("  sealed:      %d payloads (pass --kek to decrypt them)\n", rep.Sealed)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws "[=====     ]  42%  420000/1000000 entries" on one
// line, at most every 100 ms; with an unknown total (0) it draws
// "<label>: 420000 entries".
type progressBar struct {
	w     io.Writer
	label string
	last  time.Time
	drawn bool
	done  uint64
	total uint64
}

const barWidth = 30

// newProgress returns a bar on a.stderr when forced or when stderr is a
// terminal, else nil (every method of a nil bar does nothing).
func (a *app) newProgress(force bool, label string) *progressBar {
	if !force && !isTerminal(a.stderr) {
		return nil
	}
	return &progressBar{w: a.stderr, label: label}
}

// count is update with an unknown total.
func (p *progressBar) count(done uint64) { p.update(done, 0) }

func (p *progressBar) update(done, total uint64) {
	if p == nil {
		return
	}
	p.done, p.total = done, total
	if time.Since(p.last) < 100*time.Millisecond && (total == 0 || done != total) {
		return
	}
	p.draw()
}

func (p *progressBar) draw() {
	p.last = time.Now()
	if p.total == 0 {
		fmt.Fprintf(p.w, "\r%s: %d entries", p.label, p.done)
		p.drawn = true
		return
	}
	frac := float64(p.done) / float64(p.total)
	n := int(frac * barWidth)
	fmt.Fprintf(p.w, "\r[%s%s] %3d%%  %d/%d entries", strings.Repeat("=", n), strings.Repeat(" ", barWidth-n), int(frac*100), p.done, p.total)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p == nil {
		return
	}
	if p.total == 0 && p.done > 0 {
		p.draw() // the final count, whatever the rate limit skipped
	}
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
