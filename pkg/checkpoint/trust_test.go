package checkpoint

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
)

func testEntries(t *testing.T) ([]TrustEntry, ed25519.PrivateKey) {
	t.Helper()
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPub, _ := ec.PublicKey.Bytes()
	return []TrustEntry{
		{Identity: "zeta", Algorithm: keystore.RSAPSSSHA256, PublicKey: x509.MarshalPKCS1PublicKey(&testRSAKey(t).PublicKey)},
		{Identity: "attest", Algorithm: keystore.Ed25519, PublicKey: edPub},
		{Identity: "mid", Algorithm: keystore.ECDSAP256, PublicKey: ecPub},
	}, edPriv
}

func TestTrustRoundTrip(t *testing.T) {
	entries, edPriv := testEntries(t)
	data, err := MarshalTrust(entries)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("[\n  {\n")) || !bytes.HasSuffix(data, []byte("]\n")) {
		t.Fatalf("not pretty JSON:\n%s", data)
	}
	if !bytes.Contains(data, []byte(`"public_key": "`+hex.EncodeToString(entries[1].PublicKey)+`"`)) {
		t.Fatalf("public key not lowercase hex:\n%s", data)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "trust.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := LoadTrustFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := tr.Entries()
	if len(got) != 3 || got[0].Identity != "attest" || got[1].Identity != "mid" || got[2].Identity != "zeta" {
		t.Fatalf("entries not sorted: %+v", got)
	}
	for _, e := range entries {
		l, ok := tr.Lookup(e.Identity)
		if !ok || l.Algorithm != e.Algorithm || !bytes.Equal(l.PublicKey, e.PublicKey) {
			t.Fatalf("lookup %s: %+v", e.Identity, l)
		}
	}
	msg := []byte("0123456789abcdef0123456789abcdef")
	sig := ed25519.Sign(edPriv, msg)
	if err := tr.Verify("attest", msg, sig); err != nil {
		t.Fatal(err)
	}
	if err := tr.Verify("mid", msg, sig); !errors.Is(err, ErrDoesNotVerify) {
		t.Fatalf("wrong identity: %v", err)
	}
	var us *UnknownSignerError
	if err := tr.Verify("nobody", msg, sig); !errors.As(err, &us) || us.Identity != "nobody" {
		t.Fatalf("unknown identity: %v", err)
	}
	if _, ok := tr.Lookup("nobody"); ok {
		t.Fatal("lookup of unknown identity succeeded")
	}
	again, err := MarshalTrust(tr.Entries())
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-marshal differs:\n%s\n%s", again, data)
	}
	if _, err := LoadTrustFile(filepath.Join(dir, "absent.json")); err == nil {
		t.Fatal("missing trust file accepted")
	}
}

func TestParseTrustErrors(t *testing.T) {
	entries, _ := testEntries(t)
	ed := hex.EncodeToString(entries[1].PublicKey)
	ec := hex.EncodeToString(entries[2].PublicKey)
	obj := func(id, alg, pub string) string {
		return fmt.Sprintf(`{"identity":%q,"algorithm":%q,"public_key":%q}`, id, alg, pub)
	}
	cases := []struct {
		name    string
		data    string
		wantErr []string // substrings; empty = must parse
		n       int
	}{
		{"empty array", `[]`, nil, 0},
		{"unknown members ignored", `[{"identity":"a","algorithm":"ed25519","public_key":"` + ed + `","note":"x"}]`, nil, 1},
		{"exact duplicate merged", "[" + obj("a", "ed25519", ed) + "," + obj("a", "ed25519", ed) + "]", nil, 1},
		{"uppercase hex accepted", "[" + obj("a", "ed25519", strings.ToUpper(ed)) + "]", nil, 1},
		{"compressed ecdsa", "[" + obj("c", "ecdsa-p256", "02"+ec[2:66]) + "]", nil, -1},
		{"not array", `{"identity":"a"}`, []string{"not a JSON array"}, 0},
		{"null", `null`, []string{"not a JSON array"}, 0},
		{"empty file", ``, []string{"not a JSON array"}, 0},
		{"trailing garbage", `[] x`, []string{"trust file"}, 0},
		{"unknown alg", "[" + obj("a", "Ed25519", ed) + "]", []string{"entry 0", `"a"`, "unsupported algorithm 'Ed25519'"}, 0},
		{"bad hex", "[" + obj("a", "ed25519", "zz") + "]", []string{"entry 0", `"a"`, `"zz"`, "not hex"}, 0},
		{"bad key", "[" + obj("ok", "ed25519", ed) + "," + obj("b", "ed25519", ed[:62]) + "]", []string{"entry 1", `"b"`, ed[:62], "length 31"}, 0},
		{"ecdsa key under ed25519", "[" + obj("b", "ed25519", ec) + "]", []string{"entry 0", "length 65"}, 0},
		{"empty identity", "[" + obj("", "ed25519", ed) + "]", []string{"entry 0", "empty identity"}, 0},
		{"conflicting duplicate", "[" + obj("a", "ed25519", ed) + "," + obj("a", "ecdsa-p256", ec) + "]", []string{"entry 1", `"a"`, "different keys"}, 0},
		{"wrong member type", `[{"identity":1}]`, []string{"entry 0"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := ParseTrust([]byte(c.data))
			if len(c.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.n >= 0 && tr.Len() != c.n {
					t.Fatalf("len %d want %d", tr.Len(), c.n)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMarshalTrustValidates(t *testing.T) {
	if _, err := MarshalTrust([]TrustEntry{{Identity: "a", Algorithm: "ed25519", PublicKey: []byte{1}}}); err == nil {
		t.Fatal("bad key marshalled")
	}
	b, err := MarshalTrust(nil)
	if err != nil || string(b) != "[]\n" {
		t.Fatalf("empty: %q %v", b, err)
	}
}

func FuzzParseTrust(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"identity":"attest","algorithm":"ed25519","public_key":"cbf8f603daecd1a20122335bf3952ca9d17d1bd5d543b31290b6a7628c1cf9e0"}]`))
	f.Add([]byte(`[{"identity":"attest","algorithm":"ecdsa-p256","public_key":"0448889922054beffa54f16145e0bd8729a4c1d593835dc409a04c3857fdb279f59837dd31ccc684a3c6550f1bf3f341124938f429a5dd9b2c6e5c3e123d93f197"}]`))
	f.Add([]byte(`[{"identity":"x","algorithm":"rsa-pss-sha256","public_key":"3006020100020103"}]`))
	f.Add([]byte(`[{"identity":"","algorithm":"ed25519","public_key":"zz"}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTrust(data)
		if err != nil {
			return
		}
		// Whatever parses must round-trip through MarshalTrust.
		out, err := MarshalTrust(tr.Entries())
		if err != nil {
			t.Fatalf("parsed trust does not marshal: %v", err)
		}
		tr2, err := ParseTrust(out)
		if err != nil {
			t.Fatalf("marshalled trust does not parse: %v\n%s", err, out)
		}
		if tr2.Len() != tr.Len() {
			t.Fatalf("round trip changed size %d → %d", tr.Len(), tr2.Len())
		}
		for _, e := range tr.Entries() {
			if e.Identity == "" {
				t.Fatal("empty identity accepted")
			}
			if _, err := ParsePublicKey(e.Algorithm, e.PublicKey); err != nil {
				t.Fatalf("invalid key accepted: %v", err)
			}
		}
	})
}
