package wire_test

import (
	"bytes"
	"testing"

	"github.com/securelog/securelog/internal/vectors"
	"github.com/securelog/securelog/pkg/wire"
)

// FuzzDecodeEntry checks that DecodeEntry never panics and that whatever it
// accepts is canonical: re-encoding yields the input bytes exactly.
func FuzzDecodeEntry(f *testing.F) {
	v := vectors.Load(f)
	for _, e := range v.Entries {
		f.Add(vectors.Hex(f, e.CBORHex))
	}
	for _, e := range v.Chain.Entries {
		f.Add(vectors.Hex(f, e.CBORHex))
	}
	f.Add(vectors.Hex(f, v.AEAD.EncryptedEntry.CBORHex))
	f.Add(wire.EncodeEntry(sampleEntry()))
	f.Add([]byte{0x8c})
	f.Add([]byte{0x9f, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := wire.DecodeEntry(b)
		if err != nil {
			return
		}
		if !e.Severity.Valid() {
			t.Fatalf("decoded invalid severity %d", e.Severity)
		}
		if again := wire.EncodeEntry(e); !bytes.Equal(again, b) {
			t.Fatalf("accepted non-canonical input\n in %x\nout %x", b, again)
		}
	})
}

// FuzzDecodeCheckpoint is FuzzDecodeEntry for checkpoints.
func FuzzDecodeCheckpoint(f *testing.F) {
	v := vectors.Load(f)
	for _, c := range v.SegmentsAndCheckpoints.Checkpoints {
		f.Add(vectors.Hex(f, c.CBORHex))
	}
	f.Add(wire.EncodeEntry(sampleEntry()))
	f.Add([]byte{0x8c, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := wire.DecodeCheckpoint(b)
		if err != nil {
			return
		}
		if again := wire.EncodeCheckpoint(c); !bytes.Equal(again, b) {
			t.Fatalf("accepted non-canonical input\n in %x\nout %x", b, again)
		}
	})
}
