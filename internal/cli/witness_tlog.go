package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/witnessd"
)

// TlogWitnessStateFile is the witness's C2SP tlog-witness state (latest
// cosigned tree head per log origin), under --data.
const TlogWitnessStateFile = "tlog-witness.db"

func addTlogWitnessFlags(c *cobra.Command, w *witnessFlags) {
	f := c.Flags()
	f.StringArrayVar(&w.tlogLogs, "tlog-log", nil, "also serve C2SP tlog-witness POST /add-checkpoint for this log: [ORIGIN=]VKEY "+
		"(the log's note verifier key, 'securelog keys vkey'; ORIGIN defaults to the key name); repeatable, one vkey per flag, "+
		"a log with several keys repeats its origin")
	f.BoolVar(&w.tlogTrust, "tlog", false, "also serve C2SP tlog-witness POST /add-checkpoint for every log key of --trust that has a vkey (written by 'securelog keys export'); origin = the vkey's key name")
	c.PersistentFlags().StringVar(&w.tlogName, "tlog-name", "", "cosigner name of the tlog-witness cosignatures, e.g. witness.example.com/w1 (default: --identity)")
}

// parseTlogLogs groups --tlog-log values by origin.
func parseTlogLogs(vals []string) ([]witnessd.TlogLog, error) {
	var logs []witnessd.TlogLog
	idx := map[string]int{}
	for _, v := range vals {
		// A vkey never contains '=' (the base64 of 33 bytes has no padding).
		origin, vkey := "", v
		if i := strings.LastIndexByte(v, '='); i >= 0 {
			origin, vkey = v[:i], v[i+1:]
		}
		nv, err := tlogwitness.NewVerifier(vkey)
		if err != nil {
			return nil, usageErr("--tlog-log %q: %v", v, err)
		}
		if _, ok := nv.(*tlogwitness.CosignatureVerifier); ok {
			return nil, usageErr("--tlog-log %q: a cosignature (witness) key, want the log's Ed25519 note key", v)
		}
		if origin == "" {
			origin = nv.Name()
		}
		i, ok := idx[origin]
		if !ok {
			i = len(logs)
			idx[origin] = i
			logs = append(logs, witnessd.TlogLog{Origin: origin})
		}
		logs[i].VerifierKeys = append(logs[i].VerifierKeys, vkey)
	}
	return logs, nil
}

// tlogWitnessConfig returns the tlog-witness configuration of the
// witness command, or nil when neither --tlog nor --tlog-log is given. The
// caller closes its State.
func tlogWitnessConfig(ctx context.Context, w *witnessFlags, trust *checkpoint.Trust) (*witnessd.TlogConfig, error) {
	vals := w.tlogLogs
	if w.tlogTrust {
		n := len(vals)
		for _, e := range trust.Entries() {
			if e.VKey != "" {
				vals = append(vals, e.VKey)
			}
		}
		if len(vals) == n {
			return nil, usageErr("--tlog: the trust file has no vkey (re-export it with 'securelog keys export', or pass --tlog-log VKEY)")
		}
	}
	logs, err := parseTlogLogs(vals)
	if err != nil || len(logs) == 0 {
		return nil, err
	}
	state, err := witnessd.OpenTreeHeads(ctx, filepath.Join(w.data, TlogWitnessStateFile))
	if err != nil {
		return nil, fmt.Errorf("tlog-witness state: %w", err)
	}
	return &witnessd.TlogConfig{Name: w.tlogName, Logs: logs, State: state}, nil
}

// tlogCosignerVKey returns the vkey of the witness key as a C2SP
// cosignature/v1 cosigner named --tlog-name (or --identity).
func tlogCosignerVKey(w *witnessFlags, key keystore.Key) (string, error) {
	name := w.tlogName
	if name == "" {
		name = w.identity
	}
	s, err := tlogwitness.NewCosignatureSigner(name, key, nil)
	if err != nil {
		return "", err
	}
	return s.VerifierKey(), nil
}
