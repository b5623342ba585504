package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Bytes is a byte string that marshals to JSON as an array of integers 0–255,
// the only byte encoding of the wire contract (SPEC §16.3) and the JSON-lines
// file (SPEC §17). A nil Bytes marshals as [] (use OptBytes for nullable fields).
type Bytes []byte

// MarshalJSON writes an integer array such as [1,2,3].
func (b Bytes) MarshalJSON() ([]byte, error) { return appendIntArray(nil, b), nil }

// UnmarshalJSON reads an integer array; each element must be an integer 0–255.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	v, err := parseIntArray(data)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// OptBytes is a nullable byte string: nil marshals as null, anything else
// (including an empty, non-nil slice) as an integer array.
type OptBytes []byte

// MarshalJSON writes null or an integer array.
func (b OptBytes) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	return appendIntArray(nil, b), nil
}

// UnmarshalJSON reads null or an integer array.
func (b *OptBytes) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		*b = nil
		return nil
	}
	v, err := parseIntArray(data)
	if err != nil {
		return err
	}
	if v == nil {
		v = []byte{}
	}
	*b = v
	return nil
}

func appendIntArray(dst []byte, b []byte) []byte {
	dst = append(dst, '[')
	for i, c := range b {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, uint64(c), 10)
	}
	return append(dst, ']')
}

func parseIntArray(data []byte) ([]byte, error) {
	var ints []json.Number
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&ints); err != nil {
		return nil, fmt.Errorf("byte string must be a JSON array of integers 0-255: %w", err)
	}
	if ints == nil {
		return nil, fmt.Errorf("byte string must be a JSON array of integers 0-255, got null")
	}
	out := make([]byte, len(ints))
	for i, n := range ints {
		v, err := strconv.ParseUint(n.String(), 10, 8)
		if err != nil {
			return nil, fmt.Errorf("byte string element %d is %s, want an integer 0-255", i, n)
		}
		out[i] = byte(v)
	}
	return out, nil
}
