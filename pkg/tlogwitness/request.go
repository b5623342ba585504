package tlogwitness

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	sltlog "github.com/securelog/securelog/pkg/tlog"
)

// Protocol constants of c2sp.org/tlog-witness.
const (
	// AddCheckpointPath is appended to a witness's submission prefix.
	AddCheckpointPath = "/add-checkpoint"
	// SizeContentType is the Content-Type of a 409 Conflict answer, whose
	// body is the witness's latest cosigned size in decimal and a newline.
	SizeContentType = "text/x.tlog.size"
	// MaxProofLines is the most consistency proof lines a request may
	// carry (a consistency proof of a tree of up to 2^63 leaves).
	MaxProofLines = 63
	// MaxRequestBytes caps an add-checkpoint body: 63 proof lines are
	// under 3 KiB; the rest leaves room for a checkpoint with well over
	// the 16 signatures a note verifier must accept, ML-DSA-44 ones
	// included (≈3.3 KB each in base64).
	MaxRequestBytes = 64 << 10
	// MaxResponseBytes caps a witness answer a client reads.
	MaxResponseBytes = 64 << 10
)

// AddCheckpointRequest is the body of POST /add-checkpoint.
type AddCheckpointRequest struct {
	// OldSize is the size of the witness's latest cosigned checkpoint
	// the proof starts from (0 if none).
	OldSize int64
	// Proof is the RFC 6962 consistency proof from OldSize to the
	// checkpoint's size (empty when OldSize is 0 or equals the size).
	Proof tlog.TreeProof
	// Checkpoint is the signed checkpoint note.
	Checkpoint []byte
}

// Marshal returns the request body: "old N\n", one base64 line per
// proof hash, an empty line, then the checkpoint note.
func (r AddCheckpointRequest) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// TooManyProofLinesError is returned by ParseAddCheckpointRequest for a
// request with more than MaxProofLines consistency proof lines.
type TooManyProofLinesError struct{ Lines int }

func (e *TooManyProofLinesError) Error() string {
	return fmt.Sprintf("tlogwitness: %d consistency proof lines, at most %d allowed", e.Lines, MaxProofLines)
}

// ParseAddCheckpointRequest parses an add-checkpoint body. It checks the
// framing only — the old size line, at most MaxProofLines canonical base64
// hashes, the empty line, a non-empty checkpoint note — not signatures or
// consistency. Errors are *FormatError or *TooManyProofLinesError.
func ParseAddCheckpointRequest(body []byte) (AddCheckpointRequest, error) {
	// Proof lines are never empty, so the first empty line ends the header.
	head, cp, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return AddCheckpointRequest{}, formatErr("add-checkpoint request", string(body), "no empty line between the header and the checkpoint")
	}
	if len(cp) == 0 {
		return AddCheckpointRequest{}, formatErr("add-checkpoint request", string(body), "no checkpoint after the empty line")
	}
	lines := strings.Split(string(head), "\n")
	old, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return AddCheckpointRequest{}, formatErr("old size line", lines[0], `want "old " and a decimal size`)
	}
	oldSize, err := ParseSize(old)
	if err != nil {
		return AddCheckpointRequest{}, err
	}
	if n := len(lines) - 1; n > MaxProofLines {
		return AddCheckpointRequest{}, &TooManyProofLinesError{Lines: n}
	}
	r := AddCheckpointRequest{OldSize: oldSize, Checkpoint: cp}
	for _, l := range lines[1:] {
		h, err := ParseHash(l)
		if err != nil {
			return AddCheckpointRequest{}, err
		}
		r.Proof = append(r.Proof, h)
	}
	return r, nil
}

// FormatSizeBody returns the body of a 409 answer: size and a newline.
func FormatSizeBody(size int64) []byte {
	return []byte(strconv.FormatInt(size, 10) + "\n")
}

// ParseSizeBody parses the body of a 409 answer (FormatSizeBody).
func ParseSizeBody(body []byte) (int64, error) {
	s, ok := strings.CutSuffix(string(body), "\n")
	if !ok {
		return 0, formatErr("size body", string(body), "does not end in a newline")
	}
	return ParseSize(s)
}

// SplitNote splits a signed note into its text (with its final newline)
// and its signature lines (each without the final newline), at the last
// empty line. It checks the signature line framing ("— NAME BASE64") and
// that every signature is canonical base64, nothing else.
func SplitNote(msg []byte) (text string, sigLines []string, err error) {
	t, sigs, err := sltlog.SplitNote(msg)
	if err != nil {
		return "", nil, formatErr("note", string(msg), "no signature lines after an empty line")
	}
	if sigLines, err = ParseSignatureLines(string(sigs)); err != nil {
		return "", nil, err
	}
	return string(t), sigLines, nil
}

// ParseSignatureLines parses a block of note signature lines, each
// "— NAME BASE64\n", as a witness answers add-checkpoint. It returns the
// lines without their newlines. Names must be valid key names; signatures
// canonical standard base64 of at least 5 bytes (a key ID and a
// signature).
func ParseSignatureLines(block string) ([]string, error) {
	if block == "" {
		return nil, nil
	}
	body, ok := strings.CutSuffix(block, "\n")
	if !ok {
		return nil, formatErr("signature lines", block, "do not end in a newline")
	}
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if _, err := parseSignatureLine(line); err != nil {
			return nil, err
		}
		out = append(out, line)
	}
	return out, nil
}

// parseSignatureLine parses one "— NAME BASE64" line.
func parseSignatureLine(line string) (note.Signature, error) {
	rest, ok := strings.CutPrefix(line, "— ")
	if !ok {
		return note.Signature{}, formatErr("signature line", line, `want "— " (U+2014, space) first`)
	}
	name, b64, ok := strings.Cut(rest, " ")
	if !ok || !validName(name) {
		return note.Signature{}, formatErr("signature line", line, "want a key name, a space and base64")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) < 5 || base64.StdEncoding.EncodeToString(raw) != b64 {
		return note.Signature{}, formatErr("signature", b64, "want the canonical standard base64 of a key ID and a signature")
	}
	return note.Signature{Name: name, Hash: uint32(raw[0])<<24 | uint32(raw[1])<<16 | uint32(raw[2])<<8 | uint32(raw[3]), Base64: b64}, nil
}

// SignatureLine formats a note signature as a line (no newline).
func SignatureLine(s note.Signature) string {
	return "— " + s.Name + " " + s.Base64
}
