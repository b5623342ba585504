package wire

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Hex is a byte string that marshals to JSON as a lowercase hex string (used
// by the CLI and proofs; the RPC contract uses Bytes instead).
type Hex []byte

// MarshalJSON writes a lowercase hex string.
func (h Hex) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// UnmarshalJSON reads a hex string (either case).
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("hex string: %w", err)
	}
	v, err := ParseHex(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHex decodes hex text and names the bad value on error.
func ParseHex(s string) ([]byte, error) {
	v, err := hex.DecodeString(s)
	if err != nil {
		return nil, Invalidf("malformed hex %q: %v", truncate(s, 80), err)
	}
	return v, nil
}

// ParseHash32 decodes a 64-character hex digest.
func ParseHash32(s string) ([]byte, error) {
	v, err := ParseHex(s)
	if err != nil {
		return nil, err
	}
	if len(v) != HashLen {
		return nil, Invalidf("hash %q is %d bytes, want 32 (64 hex characters)", truncate(s, 80), len(v))
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
