package checkpoint

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// TrustEntry binds a signer identity to its algorithm and public key (SPEC
// §8.4 encoding). In JSON: {"identity": …, "algorithm": …, "public_key":
// lowercase hex}.
type TrustEntry struct {
	Identity  string
	Algorithm string
	PublicKey []byte
	// VKey is the C2SP signed-note verifier key of an ed25519 key (the
	// key named after the log's checkpoint origin; package tlog), or "".
	// It is carried, not used, by this package.
	VKey string
}

type trustEntryJSON struct {
	Identity  string `json:"identity"`
	Algorithm string `json:"algorithm"`
	PublicKey string `json:"public_key"`
	VKey      string `json:"vkey,omitempty"`
}

// MarshalJSON encodes the entry with its public key as lowercase hex.
func (e TrustEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(trustEntryJSON{e.Identity, e.Algorithm, hex.EncodeToString(e.PublicKey), e.VKey})
}

// UnmarshalJSON decodes the entry; the public key must be hex. Algorithm and
// key validity are checked by ParseTrust.
func (e *TrustEntry) UnmarshalJSON(b []byte) error {
	var j trustEntryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	pub, err := hex.DecodeString(j.PublicKey)
	if err != nil {
		return fmt.Errorf("public_key %q is not hex: %w", j.PublicKey, err)
	}
	*e = TrustEntry{Identity: j.Identity, Algorithm: j.Algorithm, PublicKey: pub, VKey: j.VKey}
	return nil
}

// UnknownSignerError is returned by Trust.Verify for an identity that is not
// in the trust file.
type UnknownSignerError struct{ Identity string }

func (e *UnknownSignerError) Error() string {
	return fmt.Sprintf("signer identity '%s' not found in trust file", e.Identity)
}

type trusted struct {
	entry TrustEntry
	key   crypto.PublicKey
}

// Trust is a parsed trust file: identity → algorithm and public key. Keys are
// validated and decoded once, when the Trust is built. A Trust is immutable
// and safe for concurrent use.
type Trust struct {
	byID map[string]trusted
}

// NewTrust builds a Trust from entries, validating each as ParseTrust does.
// Entries repeating an identity with the same algorithm and key are merged;
// a repeated identity with a different algorithm or key is an error.
func NewTrust(entries ...TrustEntry) (*Trust, error) {
	t := &Trust{byID: make(map[string]trusted, len(entries))}
	for i, e := range entries {
		if e.Identity == "" {
			return nil, fmt.Errorf("trust entry %d: empty identity", i)
		}
		k, err := ParsePublicKey(e.Algorithm, e.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("trust entry %d (identity %q): public key %x: %w", i, e.Identity, e.PublicKey, err)
		}
		if old, ok := t.byID[e.Identity]; ok {
			if old.entry.Algorithm != e.Algorithm || !bytes.Equal(old.entry.PublicKey, e.PublicKey) {
				return nil, fmt.Errorf("trust entry %d: identity %q appears twice with different keys (%s %x and %s %x)",
					i, e.Identity, old.entry.Algorithm, old.entry.PublicKey, e.Algorithm, e.PublicKey)
			}
			continue
		}
		e.PublicKey = bytes.Clone(e.PublicKey)
		t.byID[e.Identity] = trusted{entry: e, key: k}
	}
	return t, nil
}

// ParseTrust parses a trust file: a JSON array of {"identity", "algorithm",
// "public_key"} objects (unknown members are ignored). It rejects unknown
// algorithms, public keys that are not hex or not a valid key of their
// algorithm, empty identities and an identity listed twice with different
// keys. Errors name the index, identity and bad value.
func ParseTrust(data []byte) (*Trust, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, errors.New("trust file: not a JSON array of {identity, algorithm, public_key}")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	entries := make([]TrustEntry, len(raws))
	for i, raw := range raws {
		var j trustEntryJSON
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("trust entry %d: %w", i, err)
		}
		pub, err := hex.DecodeString(j.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("trust entry %d (identity %q): public_key %q is not hex: %w", i, j.Identity, j.PublicKey, err)
		}
		entries[i] = TrustEntry{Identity: j.Identity, Algorithm: j.Algorithm, PublicKey: pub, VKey: j.VKey}
	}
	return NewTrust(entries...)
}

// LoadTrustFile reads and parses a trust file (see ParseTrust).
func LoadTrustFile(path string) (*Trust, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	t, err := ParseTrust(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Lookup returns the entry of identity.
func (t *Trust) Lookup(identity string) (TrustEntry, bool) {
	e, ok := t.byID[identity]
	if !ok {
		return TrustEntry{}, false
	}
	out := e.entry
	out.PublicKey = bytes.Clone(out.PublicKey)
	return out, true
}

// Len returns the number of identities.
func (t *Trust) Len() int { return len(t.byID) }

// Entries returns all entries sorted by identity.
func (t *Trust) Entries() []TrustEntry {
	out := make([]TrustEntry, 0, len(t.byID))
	for _, e := range t.byID {
		c := e.entry
		c.PublicKey = bytes.Clone(c.PublicKey)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b TrustEntry) int { return strings.Compare(a.Identity, b.Identity) })
	return out
}

// Verify checks sig over msg with the key of identity (see VerifySignature).
// An identity not in the trust file gives *UnknownSignerError.
func (t *Trust) Verify(identity string, msg, sig []byte) error {
	e, ok := t.byID[identity]
	if !ok {
		return &UnknownSignerError{Identity: identity}
	}
	return verifyParsed(e.key, msg, sig)
}

// MarshalTrust encodes entries as a trust file: an indented JSON array sorted
// by identity, ending in a newline. Entries are validated as by NewTrust, so
// the output always parses with ParseTrust.
func MarshalTrust(entries []TrustEntry) ([]byte, error) {
	t, err := NewTrust(entries...)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(t.Entries(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode trust file: %w", err)
	}
	return append(b, '\n'), nil
}
