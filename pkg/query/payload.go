package query

import (
	"encoding/base64"
	"unicode/utf8"
)

// Payload is the JSON rendering of an entry payload: Text when the bytes are
// valid UTF-8, else Base64 (standard encoding); exactly one is set (an empty
// payload is Text ""). Encoding names which: "text" or "base64".
type Payload struct {
	Encoding string  `json:"encoding"`
	Text     *string `json:"text,omitempty"`
	Base64   *string `json:"base64,omitempty"`
}

// RenderPayload renders payload bytes as text or base64.
func RenderPayload(b []byte) Payload {
	if utf8.Valid(b) {
		s := string(b)
		return Payload{Encoding: "text", Text: &s}
	}
	s := base64.StdEncoding.EncodeToString(b)
	return Payload{Encoding: "base64", Base64: &s}
}

// Bytes returns the payload's bytes back.
func (p Payload) Bytes() ([]byte, error) {
	switch {
	case p.Text != nil:
		return []byte(*p.Text), nil
	case p.Base64 != nil:
		return base64.StdEncoding.DecodeString(*p.Base64)
	}
	return []byte{}, nil
}
