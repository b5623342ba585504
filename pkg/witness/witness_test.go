package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/checkpoint"
)

func TestPathForStore(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/x/tpm.db": "/var/lib/x/tpm.db.heads.json",
		"secure-log.db":     "secure-log.db.heads.json",
		"/var/lib/log/":     "/var/lib/log.heads.json",
		"./data/log":        "data/log.heads.json",
		"":                  "tpm.db.heads.json",
	} {
		if got := PathForStore(in); got != want {
			t.Errorf("PathForStore(%q) = %q, want %q", in, got, want)
		}
	}
	if got := tempPath("/a/x.heads.json"); got != "/a/x.heads.json.tmp" {
		t.Errorf("tempPath = %q", got)
	}
}

func TestHeadFileParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		fail string
	}{
		{`{"version":1,"records":[]}`, 0, ""},
		{`{"version":1}`, 0, ""},
		{`{"version":1,"records":[{"stream_id":"a","segment_id":2,"seq_end":9,"checkpoint_hash_hex":"00","updated_at_rfc3339":"x"}]}`, 1, ""},
		{`{"version":2,"records":[]}`, 0, "unsupported head file version: 2 (expected 1)"},
		{`{"records":[]}`, 0, "unsupported head file version: 0"},
		{`{`, 0, "parse head file"},
	} {
		h, err := ParseHeadFile([]byte(tc.in))
		if tc.fail != "" {
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.fail)
			}
			continue
		}
		if err != nil || len(h.Records) != tc.n {
			t.Errorf("%s: %v %v", tc.in, h, err)
		}
	}
}

func TestHeadFileAdvanceAndSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.heads.json")
	h, err := LoadHeadFile(path) // missing → empty
	if err != nil || len(h.Records) != 0 {
		t.Fatalf("missing file: %v %v", h, err)
	}
	if !h.Advance(HeadRecord{StreamID: "b", SegmentID: 3}) || !h.Advance(HeadRecord{StreamID: "a", SegmentID: 1}) {
		t.Fatal("advance refused")
	}
	if h.Advance(HeadRecord{StreamID: "b", SegmentID: 2}) {
		t.Fatal("head moved backwards")
	}
	if !h.Advance(HeadRecord{StreamID: "b", SegmentID: 5, CheckpointHashHex: "ff"}) {
		t.Fatal("forward advance refused")
	}
	if err := SaveHeadFile(path, h); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.HasSuffix(string(data), "\n") || !strings.Contains(string(data), "\n  \"records\"") {
		t.Fatalf("format: %q", data)
	}
	back, err := LoadHeadFile(path)
	if err != nil || len(back.Records) != 2 || back.Records[0].StreamID != "b" || back.Records[0].SegmentID != 5 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if _, err := os.Stat(tempPath(path)); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestVerifyCosignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	trust, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: "w", Algorithm: "ed25519", PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	h := make([]byte, 32)
	h[0] = 7
	r := Receipt{StreamID: "s", SegmentID: 1, Accepted: true, WitnessIdentity: "w",
		CheckpointHashHex: hex.EncodeToString(h), CosignatureHex: hex.EncodeToString(ed25519.Sign(priv, h))}
	if err := VerifyCosignature(trust, r); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Receipt){
		"other hash":      func(r *Receipt) { r.CheckpointHashHex = strings.Repeat("00", 32) },
		"bad sig":         func(r *Receipt) { r.CosignatureHex = strings.Repeat("11", 64) },
		"unknown witness": func(r *Receipt) { r.WitnessIdentity = "x" },
		"not accepted":    func(r *Receipt) { r.Accepted = false },
		"short hash":      func(r *Receipt) { r.CheckpointHashHex = "07" },
		"no cosignature":  func(r *Receipt) { r.CosignatureHex = "" },
	} {
		c := r
		mut(&c)
		if err := VerifyCosignature(trust, c); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if err := VerifyCosignature(nil, r); err == nil {
		t.Error("nil trust verified")
	}
}
