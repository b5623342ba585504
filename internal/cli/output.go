package cli

// The output contract of every command (docs/cli.md):
//
//   - Results go to stdout: text by default; with --json exactly one JSON
//     document per command (or JSON lines, one document per result, for
//     commands that stream results). Hashes, keys and signatures are
//     lowercase hex strings, never arrays of numbers.
//   - Errors go to stderr: "securelog: MESSAGE" as text, or with --json
//     {"error":{"code":"CODE","message":"MESSAGE"}} on one line.
//   - Exit status: 0 ok, 1 the operation or a verification failed, 2 usage
//     (bad flags, arguments, settings or configuration).
//
// Commands return errors; Main classifies them (classifyError) and prints
// them once (a.reportError). A command that needs a particular code or exit
// status returns an *ExitError (usageErr, failure, verifyFailed).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Exit statuses of every command.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitFailed: the operation failed or a verification did not hold.
	ExitFailed = 1
	// ExitUsage: bad flags, arguments, environment or configuration.
	ExitUsage = 2
)

// Error codes: the "code" of an error printed with --json.
const (
	// CodeUsage: bad flags, arguments, environment or configuration (exit 2).
	CodeUsage = "usage"
	// CodeVerificationFailed: the log, a proof, a signature or a bundle
	// did not verify (exit 1).
	CodeVerificationFailed = "verification_failed"
	// CodeNotFound: the entry, stream, segment or key does not exist (exit 1).
	CodeNotFound = "not_found"
	// CodeStoreInUse: another process holds the local store open (exit 1).
	CodeStoreInUse = "store_in_use"
	// CodeTimeout: the command gave up waiting (exit 1).
	CodeTimeout = "timeout"
	// CodeCanceled: the command was interrupted (exit 1).
	CodeCanceled = "canceled"
	// CodeFailed: any other failure (exit 1).
	CodeFailed = "failed"
)

// ExitError carries a process exit status and an error code.
type ExitError struct {
	// Code is the process exit status (ExitFailed or ExitUsage).
	Code int
	// Kind is the error code printed with --json (CodeUsage, ...); ""
	// derives it from Code and Err.
	Kind string
	// Err is the error itself.
	Err error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageErr is a bad-arguments error (exit 2).
func usageErr(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Kind: CodeUsage, Err: fmt.Errorf(format, args...)}
}

// failure is an operation failure (exit 1) with the error code code.
func failure(code string, err error) error {
	return &ExitError{Code: ExitFailed, Kind: code, Err: err}
}

// verifyFailed is a failed verification (exit 1, verification_failed).
func verifyFailed(err error) error { return failure(CodeVerificationFailed, err) }

// classifyError returns the exit status and the error code of err.
func classifyError(err error) (status int, code string) {
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Kind != "" {
			return ee.Code, ee.Kind
		}
		if ee.Code == ExitUsage {
			return ExitUsage, CodeUsage
		}
		_, code = classifyError(ee.Err)
		if code == CodeUsage {
			code = CodeFailed
		}
		return ee.Code, code
	}
	var (
		settingE  *node.SettingError
		chainE    *wire.ChainBrokenError
		inclE     *wire.InclusionMismatchError
		signerE   *checkpoint.UnknownSignerError
		badKeyE   *checkpoint.BadKeyError
		headE     *witness.HeadConflictError
		entryNF   *wire.EntryNotFoundError
		streamNF  *wire.StreamNotFoundError
		segNF     *wire.SegmentNotFoundError
		stSegNF   *store.SegmentNotFoundError
		stStrNF   *store.StreamNotFoundError
		keyNF     *keystore.KeyNotFoundError
		storeBusy *node.StoreInUseError
	)
	switch {
	case errors.As(err, &settingE):
		return ExitUsage, CodeUsage
	case errors.As(err, &storeBusy):
		return ExitFailed, CodeStoreInUse
	case errors.As(err, &chainE), errors.As(err, &inclE), errors.As(err, &signerE), errors.As(err, &badKeyE), errors.As(err, &headE):
		return ExitFailed, CodeVerificationFailed
	case errors.As(err, &entryNF), errors.As(err, &streamNF), errors.As(err, &segNF), errors.As(err, &stSegNF),
		errors.As(err, &stStrNF), errors.As(err, &keyNF):
		return ExitFailed, CodeNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return ExitFailed, CodeTimeout
	case errors.Is(err, context.Canceled):
		return ExitFailed, CodeCanceled
	}
	return ExitFailed, CodeFailed
}

// errorJSON is what --json prints on stderr for an error.
type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// reportError prints err once on stderr (as JSON with --json) and returns
// the exit status. cmd is the command that ran (nil if none was found);
// started says whether its RunE began: an error before that (unknown
// command or flag, bad arguments, bad environment) is a usage error.
func (a *app) reportError(err error, cmd *cobra.Command, started bool, args []string) int {
	if err == nil {
		return ExitOK
	}
	if !started {
		var ee *ExitError
		if !errors.As(err, &ee) {
			err = &ExitError{Code: ExitUsage, Kind: CodeUsage, Err: err}
		}
	}
	status, code := classifyError(err)
	if a.jsonOut || jsonRequested(args) {
		_ = writeJSON(a.stderr, errorJSON{errorBody{Code: code, Message: err.Error()}})
		return status
	}
	fmt.Fprintf(a.stderr, "securelog: %v\n", err)
	if status == ExitUsage && cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return status
}

// jsonRequested reports whether args ask for --json (for errors found
// before the flags were parsed).
func jsonRequested(args []string) bool {
	for _, s := range args {
		switch s {
		case "--":
			return false
		case "--json", "--json=true", "--json=1":
			return true
		}
	}
	return false
}

// printJSON writes v to stdout as one JSON document (one line). Commands
// that stream results call it once per result (JSON lines).
func (a *app) printJSON(v any) error { return writeJSON(a.stdout, v) }

// printDocument writes a JSON file's content (a trust file) to stdout: as
// it is, or with --json on one line like every other JSON output.
func (a *app) printDocument(data []byte) error {
	if a.jsonOut {
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			return err
		}
		data = b.Bytes()
	}
	data = bytes.TrimRight(data, "\n")
	_, err := a.stdout.Write(append(data, '\n'))
	return err
}

// writeJSON writes v as one line of JSON, HTML characters unescaped.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printf writes text output to stdout.
func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

// trackStart wraps the RunE of every command under c so that *started is
// set when a command's own code begins, and gives command groups (no RunE,
// only subcommands) a RunE that rejects unknown subcommands as usage
// errors instead of printing help and exiting 0.
func trackStart(c *cobra.Command, started *bool) {
	for _, sub := range c.Commands() {
		trackStart(sub, started)
	}
	if c.RunE == nil && c.Run == nil && c.HasSubCommands() && c.HasParent() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		}
	}
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*started = true
			return run(cmd, args)
		}
	}
}

// checkStoreInUse turns the lock error of opening a local store that
// another process holds into a *node.StoreInUseError (node.CheckStoreInUse).
func checkStoreInUse(spec string, err error) error { return node.CheckStoreInUse(spec, err) }
