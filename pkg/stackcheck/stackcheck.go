// Package stackcheck is the end-to-end harness of SPEC §20 as a library: it
// runs the end-to-end scenario and its extra checks against every storage
// stack (pebble, sqlite, the JSON-lines file store, the remote store over
// HTTP to a `securelog serve-rpc` subprocess, and the remote store over an
// embedded NATS server), each on a fresh store, with the software keystore
// and a PKCS#11 token in all three algorithms, and reports a PASS/FAIL cell
// per stack × keystore × check. `securelog verify-stack` prints it.
//
// The library reads no environment: the caller passes the PKCS#11 token
// (Options.PKCS11), e.g. one made by ProvisionSoftHSM, or says why there is
// none (the PKCS#11 cells are then SKIP, or FAIL with RequirePKCS11).
//
// Every run uses the same fixed clock, session id and boot id, so the last
// check compares each stack's results byte for byte (entry hashes, Merkle
// roots, checkpoint hashes) with those of the first stack.
package stackcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/keystore/pkcs11"
)

// Stack names.
const (
	StackPebble     = "pebble"
	StackSQLite     = "sqlite"
	StackFile       = "file"
	StackRemoteHTTP = "remote-http"
	StackRemoteNATS = "remote-nats"
)

// Stacks lists every stack in run order; the first is the reference of
// CheckSameAsReference.
var Stacks = []string{StackPebble, StackSQLite, StackFile, StackRemoteHTTP, StackRemoteNATS}

// Keystore kinds.
const (
	KeystoreSoftware = "software"
	KeystorePKCS11   = "pkcs11"
)

// Options configures Run.
type Options struct {
	// Stacks to run (default Stacks).
	Stacks []string
	// Algorithms to run per keystore (default keystore.Algorithms).
	Algorithms []string
	// SkipPKCS11 leaves out the PKCS#11 keystore: no PKCS#11 cells at all.
	SkipPKCS11 bool
	// PKCS11 is the token to use. When it is nil (and SkipPKCS11 is
	// false) the PKCS#11 cells are skipped with PKCS11Unavailable as
	// their reason, or fail with it when RequirePKCS11 is set.
	PKCS11 *pkcs11.Config
	// PKCS11Unavailable says why there is no token and how to provide one.
	PKCS11Unavailable string
	// RequirePKCS11 turns a missing token into failed cells.
	RequirePKCS11 bool
	// PKCS11Error, if set, is why a configured token cannot be used; the
	// PKCS#11 cells fail with it.
	PKCS11Error error
	// Binary is the securelog executable started as `serve-rpc` for the
	// remote-http stack (default os.Executable()).
	Binary string
	// Dir is the parent of the new directory where the fresh stores and
	// key directories are created; that directory is kept. Default: a
	// temporary directory, removed afterwards.
	Dir string
	// Logger receives the logs' warnings (default: discarded).
	Logger *slog.Logger
	// OnRun, if set, is called after each stack × keystore run.
	OnRun func(stack, keystore string, cells []Cell)
}

// Cell is the outcome of one check on one stack with one keystore.
type Cell struct {
	Stack    string `json:"stack"`
	Keystore string `json:"keystore"` // "software/ed25519", "pkcs11/rsa-pss-sha256", …
	Check    string `json:"check"`
	Pass     bool   `json:"pass"`
	Detail   string `json:"detail,omitempty"`
	// Skipped marks a cell that did not run (no PKCS#11 token); Detail
	// says why. A skipped cell is not a failure and not a pass.
	Skipped bool `json:"skipped,omitempty"`
}

// Result holds every cell of a Run.
type Result struct {
	Stacks    []string `json:"stacks"`
	Keystores []string `json:"keystores"`
	Checks    []string `json:"checks"`
	Cells     []Cell   `json:"cells"`
}

// OK reports whether no cell failed and at least one passed (skipped
// cells are neither).
func (r Result) OK() bool {
	passed := 0
	for _, c := range r.Cells {
		switch {
		case c.Pass:
			passed++
		case !c.Skipped:
			return false
		}
	}
	return passed > 0
}

// Failures returns the failed cells (not the skipped ones).
func (r Result) Failures() []Cell {
	var out []Cell
	for _, c := range r.Cells {
		if !c.Pass && !c.Skipped {
			out = append(out, c)
		}
	}
	return out
}

// Skipped returns the skipped cells.
func (r Result) Skipped() []Cell {
	var out []Cell
	for _, c := range r.Cells {
		if c.Skipped {
			out = append(out, c)
		}
	}
	return out
}

// Passed returns the number of cells that passed.
func (r Result) Passed() int {
	n := 0
	for _, c := range r.Cells {
		if c.Pass {
			n++
		}
	}
	return n
}

// Table renders the result as a stack × check table: a cell reads PASS when
// the check passed with every keystore that ran on that stack ("PASS,n SKIP"
// when n keystores were skipped), FAIL n/m when n keystores of m failed,
// SKIP when none ran. The failures are listed
// below with their reason; skipped cells are summarised in one line.
func (r Result) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s", "check")
	for _, s := range r.Stacks {
		fmt.Fprintf(&b, " %-12s", s)
	}
	b.WriteString("\n")
	type key struct{ stack, check string }
	total, failed, skipped := map[key]int{}, map[key]int{}, map[key]int{}
	for _, c := range r.Cells {
		k := key{c.Stack, c.Check}
		total[k]++
		switch {
		case c.Skipped:
			skipped[k]++
		case !c.Pass:
			failed[k]++
		}
	}
	for _, ch := range r.Checks {
		fmt.Fprintf(&b, "%-18s", ch)
		for _, s := range r.Stacks {
			k := key{s, ch}
			cell := "PASS"
			switch {
			case total[k] == 0:
				cell = "-"
			case failed[k] > 0:
				cell = fmt.Sprintf("FAIL %d/%d", failed[k], total[k])
			case skipped[k] == total[k]:
				cell = "SKIP"
			case skipped[k] > 0:
				cell = fmt.Sprintf("PASS,%d SKIP", skipped[k])
			}
			fmt.Fprintf(&b, " %-12s", cell)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nkeystores: %s\n", strings.Join(r.Keystores, ", "))
	if fails := r.Failures(); len(fails) > 0 {
		fmt.Fprintf(&b, "\n%d failed cell(s):\n", len(fails))
		for _, c := range fails {
			fmt.Fprintf(&b, "  %s %s %s: %s\n", c.Stack, c.Keystore, c.Check, c.Detail)
		}
	}
	if skips := r.Skipped(); len(skips) > 0 {
		fmt.Fprintf(&b, "\n%d cell(s) skipped: %s\n", len(skips), skips[0].Detail)
	}
	return b.String()
}

// keySource yields the signer and key identity of one keystore run.
type keySource struct {
	name     string // "software/ed25519"
	alg      string
	prepare  func(dir string) (keystore.Signer, string, error)
	setupErr error
	skip     string // non-empty: the run is skipped for this reason
}

// Run executes the scenario on every stack × keystore × algorithm. It
// returns an error only when the harness itself cannot run (e.g. no
// temporary directory); failures of stacks and keystores are cells.
func Run(ctx context.Context, opts Options) (Result, error) {
	if len(opts.Stacks) == 0 {
		opts.Stacks = Stacks
	}
	for _, s := range opts.Stacks {
		if !known(s) {
			return Result{}, fmt.Errorf("stackcheck: unknown stack %q (known: %s)", s, strings.Join(Stacks, ", "))
		}
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = keystore.Algorithms
	}
	for _, a := range opts.Algorithms {
		if _, err := keystore.ParseAlgorithm(a); err != nil {
			return Result{}, fmt.Errorf("stackcheck: %w", err)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Always a new directory, so every store is fresh even when opts.Dir
	// was used before; a caller-chosen parent is kept for inspection.
	dir, err := os.MkdirTemp(opts.Dir, "securelog-stackcheck-")
	if err != nil {
		return Result{}, fmt.Errorf("stackcheck: %w", err)
	}
	if opts.Dir == "" {
		defer os.RemoveAll(dir)
	}
	env := &stackEnv{opts: opts, dir: dir}
	defer env.close()

	sources := softwareSources(opts.Algorithms)
	if !opts.SkipPKCS11 {
		p11, closeFn := pkcs11Sources(opts)
		defer closeFn()
		sources = append(sources, p11...)
	}
	res := Result{Stacks: opts.Stacks, Checks: Checks}
	for _, src := range sources {
		res.Keystores = append(res.Keystores, src.name)
	}
	refs := map[string]*fingerprint{}
	n := 0
	for _, stack := range opts.Stacks {
		for _, src := range sources {
			n++
			cells := env.runOne(ctx, stack, src, fmt.Sprintf("run%03d", n), refs)
			res.Cells = append(res.Cells, cells...)
			if opts.OnRun != nil {
				opts.OnRun(stack, src.name, cells)
			}
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func known(stack string) bool {
	for _, s := range Stacks {
		if s == stack {
			return true
		}
	}
	return false
}

func softwareSources(algs []string) []keySource {
	var out []keySource
	for _, alg := range algs {
		out = append(out, keySource{name: KeystoreSoftware + "/" + alg, alg: alg, prepare: func(dir string) (keystore.Signer, string, error) {
			ks, err := keystore.OpenSoftware(dir)
			if err != nil {
				return nil, "", err
			}
			if _, err := ks.Generate("attest", alg); err != nil {
				return nil, "", err
			}
			return ks, "attest", nil
		}})
	}
	return out
}

// pkcs11Sources opens the token once; each run generates a fresh,
// non-extractable key with a unique label in it (tokens never reuse
// labels). Without a token every PKCS#11 source is skipped (or, with
// RequirePKCS11, fails) with opts.PKCS11Unavailable; if the token cannot be
// opened, every source carries the reason and its cells fail.
func pkcs11Sources(opts Options) ([]keySource, func()) {
	var ks *pkcs11.Keystore
	openErr := opts.PKCS11Error
	skip := ""
	if openErr == nil && opts.PKCS11 == nil {
		reason := opts.PKCS11Unavailable
		if reason == "" {
			reason = "no PKCS#11 token configured"
		}
		if opts.RequirePKCS11 {
			openErr = errors.New(reason)
		} else {
			skip = reason
		}
	}
	if openErr == nil && skip == "" {
		k, err := pkcs11.Open(*opts.PKCS11)
		if err != nil {
			openErr = fmt.Errorf("open PKCS#11 token %q: %w", opts.PKCS11.TokenLabel, err)
		} else {
			ks = k
		}
	}
	var out []keySource
	for _, alg := range opts.Algorithms {
		out = append(out, keySource{name: KeystorePKCS11 + "/" + alg, alg: alg, setupErr: openErr, skip: skip, prepare: func(string) (keystore.Signer, string, error) {
			label := "stackcheck-" + alg + "-" + randHex(6)
			if _, err := ks.Generate(label, alg); err != nil {
				return nil, "", fmt.Errorf("generate %s key %q in the token: %w", alg, label, err)
			}
			return ks, label, nil
		}})
	}
	return out, func() {
		if ks != nil {
			_ = ks.Close()
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cellsFor turns a scenario's results into cells.
func cellsFor(stack, ks string, results map[string]error) []Cell {
	cells := make([]Cell, 0, len(Checks))
	for _, ch := range Checks {
		err, ok := results[ch]
		if !ok {
			err = errNotRun
		}
		c := Cell{Stack: stack, Keystore: ks, Check: ch, Pass: err == nil}
		if err != nil {
			c.Detail = err.Error()
		}
		cells = append(cells, c)
	}
	return cells
}

// skipAll skips every check of a run with one reason.
func skipAll(stack, ks, reason string) []Cell {
	cells := make([]Cell, 0, len(Checks))
	for _, ch := range Checks {
		cells = append(cells, Cell{Stack: stack, Keystore: ks, Check: ch, Skipped: true, Detail: reason})
	}
	return cells
}

// failAll fails every check of a run with one reason.
func failAll(stack, ks string, err error) []Cell {
	results := map[string]error{}
	for _, ch := range Checks {
		results[ch] = err
	}
	return cellsFor(stack, ks, results)
}

var errSetup = errors.New("setup failed")
