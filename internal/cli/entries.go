package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

func parseSeqno(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, usageErr("invalid seqno %q: want a positive integer", s)
	}
	return v, nil
}

func (a *app) appendCmd() *cobra.Command {
	var typ, sev, producer, payload, payloadFile, encoding string
	var sealFlag bool
	c := &cobra.Command{
		Use:   "append STREAM --type T --severity S --producer P [--payload TEXT | --payload-file F | < stdin]",
		Short: "Append an event to a stream and print its seqno and entry hash",
		Long: `Append one event. The entry is chained to the stream's previous entry and is
durable (fsynced) when the command returns. Protected and highly-restricted
streams are sealed automatically and need --kek.

Severity is one of: emergency alert critical error warning notice info debug.
The payload comes from --payload, --payload-file, or stdin when neither is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			severity, err := wire.ParseSeverity(sev)
			if err != nil {
				return usageErr("%v", err)
			}
			body, err := a.readPayload(cmd, payload, payloadFile, true)
			if err != nil {
				return err
			}
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0], create: true, kek: true})
			if err != nil {
				return err
			}
			defer closeFn()
			ctx := cmd.Context()
			switch {
			case sealFlag:
				r, err := l.AppendSealed(ctx, args[0], typ, severity, producer, body)
				if err != nil {
					return err
				}
				return a.printAppend(r.Seqno, r.EntryHash)
			case cmd.Flags().Changed("encoding"):
				r, err := l.AppendWithEncoding(ctx, args[0], typ, severity, producer, body, encoding)
				if err != nil {
					return err
				}
				return a.printAppend(r.Seqno, r.EntryHash)
			default:
				r, err := l.Append(ctx, args[0], typ, severity, producer, body)
				if err != nil {
					return err
				}
				return a.printAppend(r.Seqno, r.EntryHash)
			}
		},
	}
	f := c.Flags()
	f.StringVar(&typ, "type", "", "event type, e.g. user.login")
	f.StringVar(&sev, "severity", "info", "severity: emergency alert critical error warning notice info debug")
	f.StringVar(&producer, "producer", "", "producer name")
	f.StringVar(&payload, "payload", "", "payload text")
	f.StringVar(&payloadFile, "payload-file", "", "read the payload from this file (- = stdin)")
	f.StringVar(&encoding, "encoding", "", "payload_encoding tag (append-with-encoding); public streams only")
	f.BoolVar(&sealFlag, "seal", false, "require sealing (the stream must be protected or highly-restricted)")
	_ = c.MarkFlagRequired("type")
	_ = c.MarkFlagRequired("producer")
	return c
}

func (a *app) printAppend(seqno uint64, h []byte) error {
	if a.jsonOut {
		return a.printJSON(securelog.AppendResult{Seqno: seqno, EntryHash: h}) // {"seqno":N,"entry_hash":"<hex>"}
	}
	a.printf("seqno %d\nentry_hash %x\n", seqno, h)
	return nil
}

// entryJSON is the CLI's JSON view of an entry: every field, bytes as hex.
type entryJSON struct {
	Version         uint32   `json:"version"`
	Seqno           uint64   `json:"seqno"`
	StreamID        string   `json:"stream_id"`
	SessionID       string   `json:"session_id"`
	BootID          string   `json:"boot_id"`
	Timestamp       string   `json:"timestamp_rfc3339"`
	EventType       string   `json:"event_type"`
	Severity        string   `json:"severity"`
	Producer        string   `json:"producer"`
	PayloadEncoding string   `json:"payload_encoding"`
	Payload         wire.Hex `json:"payload"`
	PrevEntryHash   wire.Hex `json:"prev_entry_hash"`
	EntryHash       wire.Hex `json:"entry_hash"`
}

func toEntryJSON(r wire.EntryRow) entryJSON {
	return entryJSON{wire.EntryVersion, r.Seqno, r.StreamID, r.SessionID, r.BootID, r.Timestamp, r.EventType,
		r.Severity.String(), r.Producer, r.PayloadEncoding, r.Payload, r.PrevEntryHash, r.EntryHash}
}

func (a *app) readCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "read SEQNO",
		Short: "Print the entry with a global seqno",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqno, err := parseSeqno(args[0])
			if err != nil {
				return err
			}
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{})
			if err != nil {
				return err
			}
			defer closeFn()
			row, err := l.Read(cmd.Context(), seqno)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(toEntryJSON(row))
			}
			e := toEntryJSON(row)
			a.printf("seqno %d\nstream %s\ntimestamp %s\ntype %s\nseverity %s\nproducer %s\nsession %s\nboot %s\npayload_encoding %s\n",
				e.Seqno, e.StreamID, e.Timestamp, e.EventType, e.Severity, e.Producer, e.SessionID, e.BootID, e.PayloadEncoding)
			a.printf("payload %x\nprev_entry_hash %x\nentry_hash %x\n", row.Payload, row.PrevEntryHash, row.EntryHash)
			return nil
		},
	}
}

func (a *app) headCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "head STREAM",
		Short: "Print the highest seqno of a stream",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0]})
			if err != nil {
				return err
			}
			defer closeFn()
			h, ok, err := l.Head(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				if !ok {
					return a.printJSON(map[string]any{"stream": args[0], "head": nil})
				}
				return a.printJSON(map[string]any{"stream": args[0], "head": h})
			}
			if !ok {
				return fmt.Errorf("stream %q has no entries", args[0])
			}
			a.printf("%d\n", h)
			return nil
		},
	}
}

func (a *app) verifyChainCmd() *cobra.Command {
	var from, to uint64
	c := &cobra.Command{
		Use:   "verify-chain STREAM [--from N] [--to M]",
		Short: "Verify the hash chain of a stream (default: all of it)",
		Long: `Re-encode every entry of the stream, recompute its hash and check the link to the
previous entry. Exits 1 naming the first seqno that does not hold. This checks the
chain only; 'securelog verify' is the full audit (segments, roots, signatures).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{stream: args[0]})
			if err != nil {
				return err
			}
			defer closeFn()
			if !cmd.Flags().Changed("to") {
				h, ok, err := l.Head(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if !ok {
					return &wire.StreamNotFoundError{Stream: args[0]}
				}
				to = h
			}
			if err := l.VerifyChain(cmd.Context(), args[0], from, to); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"stream": args[0], "from": from, "to": to, "ok": true})
			}
			a.printf("chain of %s OK (seqno %d..%d)\n", args[0], from, to)
			return nil
		},
	}
	c.Flags().Uint64Var(&from, "from", 1, "first seqno")
	c.Flags().Uint64Var(&to, "to", 0, "last seqno (default: the stream's head)")
	return c
}

func (a *app) openPayloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "open-payload SEQNO",
		Short: "Print the decrypted payload of an entry (needs --kek for sealed entries)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqno, err := parseSeqno(args[0])
			if err != nil {
				return err
			}
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{kek: true})
			if err != nil {
				return err
			}
			defer closeFn()
			pt, err := l.OpenPayload(cmd.Context(), seqno)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"seqno": seqno, "payload": wire.Hex(pt)})
			}
			_, err = a.stdout.Write(pt)
			return err
		},
	}
}

// readPayload returns the event payload of append or publish: --payload
// TEXT, or --payload-file FILE ("-" = stdin); with neither, stdin if
// stdinDefault, else empty. Both flags together are a usage error.
func (a *app) readPayload(cmd *cobra.Command, payload, payloadFile string, stdinDefault bool) ([]byte, error) {
	switch {
	case cmd.Flags().Changed("payload") && payloadFile != "":
		return nil, usageErr("give either --payload or --payload-file, not both")
	case cmd.Flags().Changed("payload"):
		return []byte(payload), nil
	case payloadFile == "-" || (payloadFile == "" && stdinDefault):
		body, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read payload from stdin: %w", err)
		}
		return body, nil
	case payloadFile != "":
		body, err := os.ReadFile(payloadFile)
		if err != nil {
			return nil, fmt.Errorf("read payload file: %w", err)
		}
		return body, nil
	}
	return []byte{}, nil
}
