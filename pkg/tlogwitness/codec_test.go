package tlogwitness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// specRequest is the example request body of c2sp.org/tlog-witness.
const specRequest = `old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
`

func TestParseSpecExampleRequest(t *testing.T) {
	r, err := ParseAddCheckpointRequest([]byte(specRequest))
	if err != nil {
		t.Fatal(err)
	}
	if r.OldSize != 20852014 || len(r.Proof) != 4 {
		t.Fatalf("old %d, %d proof lines", r.OldSize, len(r.Proof))
	}
	if got := string(r.Marshal()); got != specRequest {
		t.Fatalf("re-encoded request differs:\n%s", got)
	}
	text, sigs, err := SplitNote(r.Checkpoint)
	if err != nil || len(sigs) != 2 {
		t.Fatalf("split: %v, %d signature lines", err, len(sigs))
	}
	c, err := parseCheckpoint(text)
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin != "example.com/behind-the-sofa" || c.Size != 20852163 || c.String() != text {
		t.Fatalf("checkpoint %+v", c)
	}
}

// nonCanonical flips the unused low bits of a base64 hash's last data
// character: the same bytes under a lenient decoder, a second encoding.
func nonCanonical(b64 string) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alpha, b64[42])
	return b64[:42] + string(alpha[i|1]) + b64[43:]
}

func TestParseRejects(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	nc := nonCanonical(h)
	if lenient, err := base64.StdEncoding.DecodeString(nc); err != nil || !bytes.Equal(lenient, bytes.Repeat([]byte{7}, 32)) {
		t.Fatalf("test setup: %q is not a lenient encoding of the same bytes (%v)", nc, err)
	}
	cp := "o\n5\n" + h + "\n\n— o AAAAAAAA\n"
	for name, body := range map[string]string{
		"no old line":             h + "\n\n" + cp,
		"old leading zero":        "old 05\n\n" + cp,
		"old negative":            "old -1\n\n" + cp,
		"old overflow":            "old 9223372036854775808\n\n" + cp,
		"old with plus":           "old +5\n\n" + cp,
		"old two spaces":          "old  5\n\n" + cp,
		"no empty line":           "old 5\n" + h + "\n",
		"no checkpoint":           "old 5\n\n",
		"short proof hash":        "old 5\nAAAA\n\n" + cp,
		"non-canonical proof":     "old 5\n" + nc + "\n\n" + cp,
		"url-safe base64 proof":   "old 5\n" + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))) + "\n\n" + cp,
		"carriage return in head": "old 5\r\n\n" + cp,
	} {
		if _, err := ParseAddCheckpointRequest([]byte(body)); err == nil {
			t.Errorf("%s: parsed %q", name, body)
		} else if fe := (*FormatError)(nil); !errors.As(err, &fe) {
			t.Errorf("%s: error %T %v, want *FormatError", name, err, err)
		}
	}
	for name, text := range map[string]string{
		"no final newline":   "o\n5\n" + h,
		"two lines":          "o\n5\n",
		"empty origin":       "\n5\n" + h + "\n",
		"origin with space":  "o o\n5\n" + h + "\n",
		"origin with plus":   "o+o\n5\n" + h + "\n",
		"size leading zero":  "o\n05\n" + h + "\n",
		"size hex":           "o\n0x5\n" + h + "\n",
		"non-canonical root": "o\n5\n" + nc + "\n",
		"empty extension":    "o\n5\n" + h + "\n\n",
		"root too short":     "o\n5\nAAAA\n",
	} {
		if _, err := parseCheckpoint(text); err == nil {
			t.Errorf("%s: parsed %q", name, text)
		}
	}
	for _, body := range []string{"", "5", "05\n", "-1\n", "5\n\n", " 5\n"} {
		if _, err := ParseSizeBody([]byte(body)); err == nil {
			t.Errorf("ParseSizeBody(%q) succeeded", body)
		}
	}
	if n, err := ParseSizeBody(FormatSizeBody(0)); err != nil || n != 0 {
		t.Errorf("ParseSizeBody(0) = %d, %v", n, err)
	}
}

func TestProofLineLimit(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(make([]byte, 32))
	body := func(n int) []byte {
		return []byte("old 1\n" + strings.Repeat(h+"\n", n) + "\no\n2\n" + h + "\n\n— o AAAAAAAA\n")
	}
	r, err := ParseAddCheckpointRequest(body(MaxProofLines))
	if err != nil || len(r.Proof) != MaxProofLines {
		t.Fatalf("%d proof lines: %v", MaxProofLines, err)
	}
	_, err = ParseAddCheckpointRequest(body(MaxProofLines + 1))
	var tm *TooManyProofLinesError
	if !errors.As(err, &tm) || tm.Lines != MaxProofLines+1 {
		t.Fatalf("%d proof lines: %v, want *TooManyProofLinesError", MaxProofLines+1, err)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	c := Checkpoint{Origin: "example.com/log", Size: 0, Root: EmptyTreeHash, Extensions: []string{"ext 1"}}
	got, err := parseCheckpoint(c.String())
	if err != nil || fmt.Sprint(got) != fmt.Sprint(c) {
		t.Fatalf("round trip %+v: %+v, %v", c, got, err)
	}
	if sha256.Sum256(nil) != [32]byte(EmptyTreeHash) {
		t.Fatal("EmptyTreeHash is not SHA-256 of the empty string")
	}
}

func FuzzParseAddCheckpointRequest(f *testing.F) {
	f.Add([]byte(specRequest))
	f.Add([]byte("old 0\n\no\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— o AAAAAAAA\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseAddCheckpointRequest(body)
		if err != nil {
			return
		}
		if len(r.Proof) > MaxProofLines {
			t.Fatalf("%d proof lines accepted", len(r.Proof))
		}
		if !bytes.Equal(r.Marshal(), body) {
			t.Fatalf("accepted %q, re-encodes to %q", body, r.Marshal())
		}
	})
}
