package wire

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestBytesJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		ok   bool
	}{
		{`[]`, []byte{}, true},
		{` [ ] `, []byte{}, true},
		{`[0,1,255]`, []byte{0, 1, 255}, true},
		{"[ 7 ,\n 8\t]", []byte{7, 8}, true},
		{`[256]`, nil, false},
		{`[-1]`, nil, false},
		{`[1.5]`, nil, false},
		{`[01]`, nil, false},
		{`[1000]`, nil, false},
		{`["1"]`, nil, false},
		{`[1,]`, nil, false},
		{`[,1]`, nil, false},
		{`[1 2]`, nil, false},
		{`[1`, nil, false},
		{`null`, nil, false},
		{`"AQI="`, nil, false},
		{`{}`, nil, false},
		{`[1]x`, nil, false},
	} {
		var b Bytes
		err := json.Unmarshal([]byte(tc.in), &b)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && !bytes.Equal(b, tc.want) {
			t.Errorf("%q: got %v want %v", tc.in, []byte(b), tc.want)
		}
	}
	var o OptBytes
	if err := json.Unmarshal([]byte(`null`), &o); err != nil || o != nil {
		t.Errorf("OptBytes null: %v %v", o, err)
	}
	if err := json.Unmarshal([]byte(`[]`), &o); err != nil || o == nil || len(o) != 0 {
		t.Errorf("OptBytes []: %v %v", o, err)
	}
}

func FuzzBytesJSON(f *testing.F) {
	for _, s := range []string{`[]`, `[1,2,3]`, `[255]`, `[256]`, ` [ 0 , 9 ] `, `[01]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Bytes
		if err := b.UnmarshalJSON(data); err != nil {
			return
		}
		// Whatever parses must be what encoding/json reads as an array of uint8 values.
		var ref []uint8
		var ints []int
		if err := json.Unmarshal(data, &ints); err != nil {
			t.Fatalf("we accepted %q, encoding/json rejects it: %v", data, err)
		}
		for _, v := range ints {
			ref = append(ref, uint8(v))
		}
		if !bytes.Equal(b, ref) {
			t.Fatalf("%q: got %v, encoding/json %v", data, []byte(b), ref)
		}
		out, _ := b.MarshalJSON()
		var back Bytes
		if err := back.UnmarshalJSON(out); err != nil || !bytes.Equal(back, b) {
			t.Fatalf("round trip of %v: %v", []byte(b), err)
		}
	})
}
