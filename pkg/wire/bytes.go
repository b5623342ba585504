package wire

import (
	"bytes"
	"fmt"
	"slices"
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

// decimalComma holds the decimal spelling of every byte value followed
// by a comma, in four bytes, and decimalLen its length with the comma.
var decimalComma, decimalLen = func() (t [256][4]byte, n [256]uint8) {
	for i := range t {
		n[i] = uint8(copy(t[i][:], strconv.Itoa(i)+",")) // 2..4 bytes
	}
	return t, n
}()

// appendIntArray appends b as a JSON array of integers: "[1,22,255]".
func appendIntArray(dst []byte, b []byte) []byte {
	if len(b) == 0 {
		return append(dst, '[', ']')
	}
	start := len(dst)
	dst = slices.Grow(dst, 2+4*len(b))[:start+2+4*len(b)]
	dst[start] = '['
	n := start + 1
	for _, c := range b {
		*(*[4]byte)(dst[n:]) = decimalComma[c]
		n += int(decimalLen[c])
	}
	dst[n-1] = ']' // the last comma
	return dst[:n]
}

// parseIntArray parses a JSON array of integers 0–255 (whitespace allowed
// between tokens) without reflection: byte strings are most of the bytes of
// every RPC result and export bundle.
func parseIntArray(data []byte) ([]byte, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		if i+4 <= len(data) && string(data[i:i+4]) == "null" {
			return nil, fmt.Errorf("byte string must be a JSON array of integers 0-255, got null")
		}
		return nil, fmt.Errorf("byte string must be a JSON array of integers 0-255, got %.20q", data[i:])
	}
	out := make([]byte, 0, len(data)/3)
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		if j := skipSpace(data, i+1); j != len(data) {
			return nil, fmt.Errorf("byte string: trailing data after array")
		}
		return out, nil
	}
	for {
		start := i
		v := 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			v = v*10 + int(data[i]-'0')
			i++
			if i-start > 3 {
				break
			}
		}
		n := i - start
		if n == 0 || n > 3 || v > 255 || (n > 1 && data[start] == '0') {
			end := i
			for end < len(data) && data[end] != ',' && data[end] != ']' {
				end++
			}
			return nil, fmt.Errorf("byte string element %d is %q, want an integer 0-255", len(out), data[start:end])
		}
		out = append(out, byte(v))
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, fmt.Errorf("byte string: unterminated array")
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			if j := skipSpace(data, i+1); j != len(data) {
				return nil, fmt.Errorf("byte string: trailing data after array")
			}
			return out, nil
		default:
			return nil, fmt.Errorf("byte string: unexpected %q after element %d", data[i], len(out)-1)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
