package seal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/internal/vectors"
)

type aeadVectors struct {
	KEKHex string `json:"kek_hex"`
	Seal   struct {
		AADHex              string `json:"aad_hex"`
		AADUTF8             string `json:"aad_utf8"`
		CiphertextAndTagHex string `json:"ciphertext_and_tag_hex"`
		NonceHex            string `json:"nonce_hex"`
		Plaintext           string `json:"plaintext_utf8"`
		SegmentID           uint64 `json:"segment_id"`
		StoredHex           string `json:"stored_payload_hex"`
		StoredLen           int    `json:"stored_payload_len"`
	} `json:"seal"`
	SegmentKeys []struct {
		KeyHex    string `json:"key_hex"`
		SegmentID uint64 `json:"segment_id"`
	} `json:"segment_keys"`
	StreamKey struct {
		KeyHex string `json:"key_hex"`
		Stream string `json:"stream"`
		Tier   string `json:"tier"`
	} `json:"stream_key"`
	StreamKeysDefault []struct {
		StreamKeyHex string `json:"stream_key_hex"`
		Tier         string `json:"tier"`
	} `json:"stream_keys_for_stream_default"`
	HighlyRestricted struct {
		AAD          string `json:"aad_utf8"`
		KEKHex       string `json:"kek_hex"`
		MinEventType struct {
			Input string `json:"input"`
			Tag   string `json:"tag"`
		} `json:"minimized_event_type"`
		MinProducer struct {
			Input string `json:"input"`
			Tag   string `json:"tag"`
		} `json:"minimized_producer"`
		NonceHex       string `json:"nonce_hex"`
		Plaintext      string `json:"plaintext_utf8"`
		Segment1KeyHex string `json:"segment1_key_hex"`
		StoredHex      string `json:"stored_payload_hex"`
		Stream         string `json:"stream"`
		StreamKeyHex   string `json:"stream_key_hex"`
	} `json:"highly_restricted"`
}

func loadAEAD(t *testing.T) aeadVectors {
	t.Helper()
	var v aeadVectors
	vectors.Section(t, "aead", &v)
	return v
}

func h(t *testing.T, s string) []byte {
	t.Helper()
	return vectors.Hex(t, s)
}

func TestVectorStreamKeys(t *testing.T) {
	v := loadAEAD(t)
	kek := h(t, v.KEKHex)
	if len(v.StreamKeysDefault) != 3 {
		t.Fatalf("expected 3 stream key vectors, got %d", len(v.StreamKeysDefault))
	}
	for _, c := range v.StreamKeysDefault {
		t.Run(c.Tier, func(t *testing.T) {
			got := StreamKey(kek, "default", c.Tier)
			if hex.EncodeToString(got) != c.StreamKeyHex {
				t.Fatalf("stream key %s: got %x want %s", c.Tier, got, c.StreamKeyHex)
			}
		})
	}
	got := StreamKey(kek, v.StreamKey.Stream, v.StreamKey.Tier)
	if hex.EncodeToString(got) != v.StreamKey.KeyHex {
		t.Fatalf("stream_key: got %x want %s", got, v.StreamKey.KeyHex)
	}
}

func TestVectorSegmentKeys(t *testing.T) {
	v := loadAEAD(t)
	sk := h(t, v.StreamKey.KeyHex)
	if len(v.SegmentKeys) == 0 {
		t.Fatal("no segment key vectors")
	}
	for _, c := range v.SegmentKeys {
		got := SegmentKey(sk, c.SegmentID)
		if hex.EncodeToString(got) != c.KeyHex {
			t.Errorf("segment %d: got %x want %s", c.SegmentID, got, c.KeyHex)
		}
	}
}

func TestVectorSealOpen(t *testing.T) {
	v := loadAEAD(t)
	kek := h(t, v.KEKHex)
	s := v.Seal
	aad := AAD(v.StreamKey.Stream, v.StreamKey.Tier, s.SegmentID)
	if string(aad) != s.AADUTF8 || hex.EncodeToString(aad) != s.AADHex {
		t.Fatalf("AAD: got %q want %q", aad, s.AADUTF8)
	}
	stored, err := Seal(kek, v.StreamKey.Stream, v.StreamKey.Tier, s.SegmentID, h(t, s.NonceHex), []byte(s.Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(stored) != s.StoredHex || len(stored) != s.StoredLen {
		t.Fatalf("sealed: got %x want %s", stored, s.StoredHex)
	}
	if hex.EncodeToString(stored[NonceSize:]) != s.CiphertextAndTagHex {
		t.Fatalf("ciphertext: got %x want %s", stored[NonceSize:], s.CiphertextAndTagHex)
	}
	pt, err := Open(kek, v.StreamKey.Stream, v.StreamKey.Tier, s.SegmentID, h(t, s.StoredHex))
	if err != nil {
		t.Fatal(err)
	}
	if string(pt) != s.Plaintext {
		t.Fatalf("open: got %q want %q", pt, s.Plaintext)
	}
}

func TestVectorHighlyRestricted(t *testing.T) {
	v := loadAEAD(t).HighlyRestricted
	kek := h(t, v.KEKHex)
	tier, err := ParseTier("highly_restricted")
	if err != nil || tier != TierHighlyRestricted {
		t.Fatalf("ParseTier alias: %q %v", tier, err)
	}
	sk := StreamKey(kek, v.Stream, tier)
	if hex.EncodeToString(sk) != v.StreamKeyHex {
		t.Fatalf("stream key: got %x want %s", sk, v.StreamKeyHex)
	}
	if got := hex.EncodeToString(SegmentKey(sk, 1)); got != v.Segment1KeyHex {
		t.Fatalf("segment key: got %s want %s", got, v.Segment1KeyHex)
	}
	if got := string(AAD(v.Stream, tier, 1)); got != v.AAD {
		t.Fatalf("AAD: got %q want %q", got, v.AAD)
	}
	stored, err := Seal(kek, v.Stream, tier, 1, h(t, v.NonceHex), []byte(v.Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(stored) != v.StoredHex {
		t.Fatalf("sealed: got %x want %s", stored, v.StoredHex)
	}
	if got := Minimize(kek, v.Stream, KindEventType, v.MinEventType.Input); got != v.MinEventType.Tag {
		t.Errorf("minimised event_type: got %s want %s", got, v.MinEventType.Tag)
	}
	if got := Minimize(kek, v.Stream, KindProducer, v.MinProducer.Input); got != v.MinProducer.Tag {
		t.Errorf("minimised producer: got %s want %s", got, v.MinProducer.Tag)
	}
	if !IsMinimized(v.MinProducer.Tag) || IsMinimized(v.MinProducer.Input) {
		t.Error("IsMinimized wrong")
	}
	if n := len(Minimize(kek, "s", KindProducer, "")); n != 20 {
		t.Errorf("tag length %d, want 20", n)
	}
}

func TestOpenFailures(t *testing.T) {
	kek := bytes.Repeat([]byte{7}, 32)
	nonce := make([]byte, NonceSize)
	stored, err := Seal(kek, "s", TierProtected, 3, nonce, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(stored)
	tampered[NonceSize] ^= 1
	otherKEK := bytes.Repeat([]byte{8}, 32)
	cases := []struct {
		name    string
		kek     []byte
		stream  string
		tier    string
		seg     uint64
		stored  []byte
		wantMsg string
	}{
		{"ok", kek, "s", TierProtected, 3, stored, ""},
		{"wrong kek", otherKEK, "s", TierProtected, 3, stored, "aead open failed"},
		{"wrong segment", kek, "s", TierProtected, 4, stored, "aead open failed"},
		{"wrong tier", kek, "s", TierHighlyRestricted, 3, stored, "aead open failed"},
		{"wrong stream", kek, "t", TierProtected, 3, stored, "aead open failed"},
		{"tampered", kek, "s", TierProtected, 3, tampered, "aead open failed"},
		{"too short", kek, "s", TierProtected, 3, stored[:27], "sealed payload too short: 27 bytes"},
		{"empty", kek, "s", TierProtected, 3, nil, "sealed payload too short: 0 bytes"},
		{"short kek", kek[:16], "s", TierProtected, 3, stored, "aead open failed: master KEK must be 32 bytes, got 16"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pt, err := Open(c.kek, c.stream, c.tier, c.seg, c.stored)
			if c.wantMsg == "" {
				if err != nil || string(pt) != "hello" {
					t.Fatalf("got %q %v", pt, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.wantMsg) {
				t.Fatalf("got %v, want prefix %q", err, c.wantMsg)
			}
		})
	}
	if _, err := Open(otherKEK, "s", TierProtected, 3, stored); !errors.Is(err, ErrOpen) {
		t.Fatalf("auth failure should wrap ErrOpen: %v", err)
	}
}

func TestSealEmptyAndBadNonce(t *testing.T) {
	kek := bytes.Repeat([]byte{1}, 32)
	stored, err := Seal(kek, "s", TierPublic, 1, make([]byte, 12), nil)
	if err != nil || len(stored) != Overhead {
		t.Fatalf("empty plaintext: len %d err %v", len(stored), err)
	}
	pt, err := Open(kek, "s", TierPublic, 1, stored)
	if err != nil || pt == nil || len(pt) != 0 {
		t.Fatalf("open empty: %v %v", pt, err)
	}
	if _, err := Seal(kek, "s", TierPublic, 1, make([]byte, 11), nil); err == nil {
		t.Fatal("11-byte nonce accepted")
	}
	if _, err := Seal(kek[:31], "s", TierPublic, 1, make([]byte, 12), nil); err == nil {
		t.Fatal("31-byte KEK accepted")
	}
}

func TestParseTier(t *testing.T) {
	cases := []struct{ in, want string }{
		{"public", TierPublic}, {"PUBLIC", TierPublic}, {"Protected", TierProtected},
		{"highly-restricted", TierHighlyRestricted}, {"Highly_Restricted", TierHighlyRestricted},
		{"secret", ""}, {"", ""}, {"highly restricted", ""}, {" public", ""},
	}
	for _, c := range cases {
		got, err := ParseTier(c.in)
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), "\""+c.in+"\"") {
				t.Errorf("ParseTier(%q) = %q, %v; want error naming the value", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseTier(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for s, want := range map[string]bool{"public": true, "protected": true, "highly-restricted": true,
		"Public": false, "highly_restricted": false, "": false} {
		if ValidTierExact(s) != want {
			t.Errorf("ValidTierExact(%q) != %v", s, want)
		}
	}
}

func TestCheckStreamID(t *testing.T) {
	if err := CheckStreamID("default"); err != nil {
		t.Fatal(err)
	}
	err := CheckStreamID("a:tier=public")
	if err == nil || !strings.Contains(err.Error(), "a:tier=public") {
		t.Fatalf("got %v", err)
	}
	if !Sealed(TierProtected) || !Sealed(TierHighlyRestricted) || Sealed(TierPublic) {
		t.Fatal("Sealed wrong")
	}
}

func TestKEKFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "kek")
	if err := GenerateKEKFile(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	data, _ := os.ReadFile(p)
	if len(data) != 65 || data[64] != '\n' {
		t.Fatalf("file contents %q", data)
	}
	k, err := LoadKEK(p)
	if err != nil || len(k) != 32 || hex.EncodeToString(k)+"\n" != string(data) {
		t.Fatalf("load: %x %v", k, err)
	}
	if err := GenerateKEKFile(p); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: %v", err)
	}
	again, _ := os.ReadFile(p)
	if !bytes.Equal(again, data) {
		t.Fatal("file changed on refused overwrite")
	}
	k2, err := LoadKEK(p)
	if err != nil || !bytes.Equal(k, k2) {
		t.Fatal("reload differs")
	}

	raw := bytes.Repeat([]byte{0xab}, 32)
	hexKey := strings.Repeat("ab", 32)
	cases := []struct {
		name    string
		data    []byte
		want    []byte
		wantErr string
	}{
		{"raw", raw, raw, ""},
		{"hex", []byte(hexKey), raw, ""},
		{"hex newline", []byte(hexKey + "\n"), raw, ""},
		{"hex crlf", []byte(hexKey + "\r\n"), raw, ""},
		{"short", []byte("abc"), nil, "got 3 bytes"},
		{"hex two newlines", []byte(hexKey + "\n\n"), nil, "got 66 bytes"},
		{"not hex", []byte(strings.Repeat("zz", 32)), nil, "not hex"},
		{"empty", nil, nil, "got 0 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.WriteFile(f, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadKEK(f)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), f) {
					t.Fatalf("got %v, want error with %q and the file name", err, c.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("got %x %v", got, err)
			}
		})
	}
	if _, err := LoadKEK(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParseKEK(f *testing.F) {
	f.Add([]byte(strings.Repeat("0", 64) + "\n"))
	f.Add(bytes.Repeat([]byte{1}, 32))
	f.Add([]byte("xyz"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKEK(data)
		if err == nil && len(k) != KEKSize {
			t.Fatalf("accepted %d-byte key", len(k))
		}
	})
}

func FuzzOpen(f *testing.F) {
	kek := bytes.Repeat([]byte{9}, 32)
	s, _ := Seal(kek, "s", TierProtected, 1, make([]byte, 12), []byte("x"))
	f.Add(s)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, stored []byte) {
		pt, err := Open(kek, "s", TierProtected, 1, stored)
		if err == nil && len(pt)+Overhead != len(stored) {
			t.Fatalf("plaintext length %d for %d stored bytes", len(pt), len(stored))
		}
	})
}

func BenchmarkSeal300(b *testing.B) {
	kek := bytes.Repeat([]byte{9}, 32)
	pt := make([]byte, 300)
	nonce := make([]byte, 12)
	b.SetBytes(300)
	for b.Loop() {
		if _, err := Seal(kek, "default", TierProtected, 1, nonce, pt); err != nil {
			b.Fatal(err)
		}
	}
}
