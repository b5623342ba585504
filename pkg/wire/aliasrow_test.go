package wire_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/securelog/securelog/pkg/wire"
)

// inside reports whether the n bytes at p lie within b.
func inside(b []byte, p unsafe.Pointer, n int) bool {
	if n == 0 {
		return true
	}
	lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))+uintptr(len(b))
	return uintptr(p) >= lo && uintptr(p)+uintptr(n) <= hi
}

// checkAppendEntryRow: AppendEntryRow appends exactly EncodeEntry of the
// row's fields after what dst held, leaves the row's values as they were,
// and its text and byte fields then lie inside the appended bytes.
func checkAppendEntryRow(t *testing.T, prefix []byte, r wire.EntryRow) {
	t.Helper()
	want := wire.EncodeEntry(r.Fields())
	got := r
	out := wire.AppendEntryRow(append([]byte(nil), prefix...), &got)
	if !bytes.Equal(out[:len(prefix)], prefix) {
		t.Fatalf("prefix changed: %x", out[:len(prefix)])
	}
	enc := out[len(prefix):]
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding\n got %x\nwant %x", enc, want)
	}
	norm := func(r wire.EntryRow) wire.EntryRow { // nil and empty byte fields hash alike
		if r.Payload == nil {
			r.Payload = []byte{}
		}
		if r.PrevEntryHash == nil {
			r.PrevEntryHash = []byte{}
		}
		return r
	}
	if !reflect.DeepEqual(norm(got), norm(r)) {
		t.Fatalf("row changed:\n got %+v\nwant %+v", got, r)
	}
	for _, s := range []string{got.StreamID, got.SessionID, got.BootID, got.Timestamp, got.EventType, got.Producer, got.PayloadEncoding} {
		if !inside(enc, unsafe.Pointer(unsafe.StringData(s)), len(s)) {
			t.Fatalf("text %q is not inside the encoding", s)
		}
	}
	for _, b := range [][]byte{got.Payload, got.PrevEntryHash} {
		if b == nil || cap(b) != len(b) || !inside(enc, unsafe.Pointer(unsafe.SliceData(b)), len(b)) {
			t.Fatalf("bytes %x (cap %d) are not inside the encoding", b, cap(b))
		}
	}
	valid := got.Severity.Valid()
	for _, s := range []string{got.StreamID, got.SessionID, got.BootID, got.Timestamp, got.EventType, got.Producer, got.PayloadEncoding} {
		valid = valid && utf8.ValidString(s)
	}
	if valid { // what DecodeEntry accepts: it decodes back to the row
		f, err := wire.DecodeEntry(enc)
		if err != nil {
			t.Fatalf("DecodeEntry: %v", err)
		}
		if !reflect.DeepEqual(f, norm(got).Fields()) {
			t.Fatalf("decodes to %+v", f)
		}
	}
}

func TestAppendEntryRow(t *testing.T) {
	f := sampleEntry()
	r := wire.EntryRow{Seqno: f.Seqno, StreamID: f.StreamID, SessionID: f.SessionID, BootID: f.BootID, Timestamp: f.Timestamp,
		EventType: f.EventType, Severity: f.Severity, Producer: f.Producer, PayloadEncoding: f.PayloadEncoding,
		Payload: f.Payload, PrevEntryHash: f.PrevEntryHash, EntryHash: make([]byte, 32)}
	checkAppendEntryRow(t, nil, r)
	checkAppendEntryRow(t, []byte("prefix"), r)
	empty := wire.EntryRow{Seqno: 1 << 40}
	checkAppendEntryRow(t, make([]byte, 3, 1000), empty)
	long := r
	long.Payload = bytes.Repeat([]byte{7}, 70000)
	long.StreamID = strings.Repeat("s", 300)
	long.Severity = wire.Severity(42) // encoded as its String form, as AppendEntry does
	checkAppendEntryRow(t, nil, long)
}

// FuzzAppendEntryRow is the differential test of AppendEntryRow against
// EncodeEntry on arbitrary rows.
func FuzzAppendEntryRow(f *testing.F) {
	s := sampleEntry()
	f.Add([]byte("p"), s.Seqno, s.StreamID, s.SessionID, s.BootID, s.Timestamp, s.EventType, uint8(s.Severity), s.Producer, s.PayloadEncoding, s.Payload, s.PrevEntryHash)
	f.Add([]byte{}, uint64(0), "", "", "", "", "", uint8(9), "", "", []byte(nil), []byte(nil))
	f.Add([]byte{1, 2, 3}, uint64(1<<63), "é", "\x00", "b", "2026", "e", uint8(0), "p", "aes-256-gcm", bytes.Repeat([]byte{1}, 300), make([]byte, 32))
	f.Fuzz(func(t *testing.T, prefix []byte, seqno uint64, stream, sess, boot, ts, ev string, sev uint8, prod, enc string, payload, prev []byte) {
		checkAppendEntryRow(t, prefix, wire.EntryRow{Seqno: seqno, StreamID: stream, SessionID: sess, BootID: boot, Timestamp: ts,
			EventType: ev, Severity: wire.Severity(sev), Producer: prod, PayloadEncoding: enc, Payload: payload, PrevEntryHash: prev})
	})
}
