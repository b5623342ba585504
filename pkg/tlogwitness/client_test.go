package tlogwitness

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memTree is an in-memory RFC 6962 tree (tlog's stored hashes).
type memTree struct {
	mu     sync.Mutex
	hashes []tlog.Hash
	n      int64
}

func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// grow appends k leaves and returns the new size and root.
func (m *memTree) grow(t testing.TB, k int) (int64, tlog.Hash) {
	t.Helper()
	for range k {
		hs, err := tlog.StoredHashes(m.n, []byte(fmt.Sprintf("leaf %d", m.n)), m)
		if err != nil {
			t.Fatal(err)
		}
		m.mu.Lock()
		m.hashes = append(m.hashes, hs...)
		m.n++
		m.mu.Unlock()
	}
	h, err := tlog.TreeHash(m.n, m)
	if err != nil {
		t.Fatal(err)
	}
	return m.n, h
}

// fakeWitness is a minimal tlog-witness for client tests: it follows the
// 409 rule and cosigns, and can be told to misbehave.
type fakeWitness struct {
	mu      sync.Mutex
	size    int64
	signer  *CosignatureSigner
	mode    string // "", "tamper", "future", "500", "409-no-type", "other-key", "ahead"
	olds    []int64
	proofOK func(old, size int64, proof tlog.TreeProof) bool
}

func newFakeWitness(t testing.TB, name string, now func() time.Time) (*fakeWitness, *httptest.Server) {
	t.Helper()
	s, err := NewCosignatureSigner(name, edKey{seeded(name)}, now)
	if err != nil {
		t.Fatal(err)
	}
	fw := &fakeWitness{signer: s}
	hs := httptest.NewServer(http.HandlerFunc(fw.serve))
	t.Cleanup(hs.Close)
	return fw, hs
}

func (fw *fakeWitness) serve(w http.ResponseWriter, r *http.Request) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	req, err := ParseAddCheckpointRequest(body)
	if err != nil || r.URL.Path != AddCheckpointPath {
		http.Error(w, "bad request", 400)
		return
	}
	fw.olds = append(fw.olds, req.OldSize)
	text, _, _ := SplitNote(req.Checkpoint)
	c, _ := parseCheckpoint(text)
	switch fw.mode {
	case "500":
		http.Error(w, "boom", 500)
		return
	case "ahead":
		fw.size = c.Size + 10
	}
	if req.OldSize != fw.size {
		if fw.mode != "409-no-type" {
			w.Header().Set("Content-Type", SizeContentType)
		}
		w.WriteHeader(409)
		w.Write(FormatSizeBody(fw.size))
		return
	}
	if fw.proofOK != nil && !fw.proofOK(req.OldSize, c.Size, req.Proof) {
		http.Error(w, "bad proof", 422)
		return
	}
	fw.size = c.Size
	signer := note.Signer(fw.signer)
	switch fw.mode {
	case "future":
		signer, _ = NewCosignatureSigner(fw.signer.Name(), fw.signer.key, fixed(time.Now().Add(time.Hour)))
	case "other-key":
		signer, _ = NewCosignatureSigner(fw.signer.Name(), edKey{seeded("impostor")}, nil)
	}
	signed, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	sigs := signed[len(text)+1:]
	if fw.mode == "tamper" {
		_, lines, _ := SplitNote(signed)
		s, _ := parseSignatureLine(lines[0])
		raw, _ := base64.StdEncoding.DecodeString(s.Base64)
		raw[len(raw)-1] ^= 0x80
		sigs = []byte("— " + s.Name + " " + base64.StdEncoding.EncodeToString(raw) + "\n")
	}
	w.Write(sigs)
}

func (fw *fakeWitness) set(mode string) { fw.mu.Lock(); fw.mode = mode; fw.mu.Unlock() }

func (fw *fakeWitness) oldSizes() []int64 {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return append([]int64(nil), fw.olds...)
}

func checkProof(tree *memTree) func(old, size int64, proof tlog.TreeProof) bool {
	return func(old, size int64, proof tlog.TreeProof) bool {
		if old == 0 || old == size {
			return len(proof) == 0
		}
		oh, err1 := tlog.TreeHash(old, tree)
		nh, err2 := tlog.TreeHash(size, tree)
		return err1 == nil && err2 == nil && tlog.CheckTree(proof, size, nh, old, oh) == nil
	}
}

func TestClientQuorumAndConflicts(t *testing.T) {
	ctx := context.Background()
	lg := newTestLog(t, "example.com/log")
	tree := &memTree{}
	var cfgs []WitnessConfig
	var fws []*fakeWitness
	for _, name := range []string{"w1", "w2", "w3"} {
		fw, hs := newFakeWitness(t, name, nil)
		fw.proofOK = checkProof(tree)
		fws = append(fws, fw)
		cfgs = append(cfgs, WitnessConfig{URL: hs.URL, VKey: fw.signer.VerifierKey()})
	}
	c, err := New(Options{Witnesses: cfgs, Quorum: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	verifier := CheckpointVerifier{Origin: lg.origin, Log: lg.verifier(t), Policy: c.Policy()}
	proofs := HashReaderProofs(tree)

	// w3 has already cosigned a size the client does not know: 409, retry.
	n, h := tree.grow(t, 5)
	fws[2].size = 3
	tree.grow(t, 0)
	res, err := c.Submit(ctx, lg.sign(t, n, h), proofs)
	if err != nil {
		t.Fatalf("submit size %d: %v (failures %v)", n, err, res)
	}
	if len(res.Cosignatures) != 3 || !res.Witnessed {
		t.Fatalf("cosignatures %d, witnessed %v, failures %v", len(res.Cosignatures), res.Witnessed, res.Failures)
	}
	if got := fmt.Sprint(fws[2].oldSizes()); got != "[0 3]" {
		t.Fatalf("w3 saw old sizes %s, want [0 3] (a retry from its 409 size)", got)
	}
	v, err := verifier.Verify(res.Cosigned, time.Now())
	if err != nil || len(v.Cosignatures) != 3 {
		t.Fatalf("merged note: %v", err)
	}

	// Next checkpoint: each witness gets a consistency proof from 5.
	// w1 misbehaves (tampered cosignature), still 2 of 3.
	fws[0].set("tamper")
	n, h = tree.grow(t, 7)
	res, err = c.Submit(ctx, lg.sign(t, n, h), proofs)
	if err != nil {
		t.Fatalf("2 of 3: %v", err)
	}
	if len(res.Failures) != 1 || res.Failures[0].Witness != "w1" || len(res.Cosignatures) != 2 {
		t.Fatalf("failures %v, cosignatures %d", res.Failures, len(res.Cosignatures))
	}
	if got := fmt.Sprint(fws[1].oldSizes()); got != "[0 5]" {
		t.Fatalf("w2 old sizes %s", got)
	}
	// Each other misbehaviour is a failure; with two failing, no quorum.
	for _, mode := range []string{"future", "500", "409-no-type", "other-key", "ahead"} {
		fws[0].set("")
		fws[1].set(mode)
		fws[2].set("tamper")
		n, h = tree.grow(t, 1)
		res, err = c.Submit(ctx, lg.sign(t, n, h), proofs)
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.Have != 1 || qe.Need != 2 || res.Witnessed {
			t.Fatalf("%s: err %v, want a *QuorumError with 1 of 2", mode, err)
		}
		if _, err := verifier.Verify(res.Cosigned, time.Now()); !errors.As(err, &qe) {
			t.Fatalf("%s: merged note verified to %v, want a *QuorumError", mode, err)
		}
		var we *WitnessError
		for _, f := range res.Failures {
			if f.Witness == "w2" {
				we = f
			}
		}
		if we == nil {
			t.Fatalf("%s: w2 not among failures %v", mode, res.Failures)
		}
		t.Logf("%s: %v", mode, we)
		fws[1].set("")
		fws[1].size = n // resynchronise the misbehaving fake
		fws[2].size = n
	}
}

func TestVerifyCheckpoint(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	w1, _ := NewCosignatureSigner("w1", edKey{seeded("w1")}, fixed(t0))
	w2, _ := NewCosignatureSigner("w2", edKey{seeded("w2")}, fixed(t0.Add(time.Hour)))
	stranger, _ := NewCosignatureSigner("w3", edKey{seeded("w3")}, fixed(t0))
	v1, _ := NewVerifier(w1.VerifierKey())
	v2, _ := NewVerifier(w2.VerifierKey())
	cv := CheckpointVerifier{Origin: lg.origin, Log: lg.verifier(t), Policy: Policy{Witnesses: []note.Verifier{v1, v2}, Quorum: 2}}
	text := Checkpoint{Origin: lg.origin, Size: 9, Root: tlog.Hash{9}}.String()
	signed, err := note.Sign(&note.Note{Text: text}, lg.signer, w1, w2, stranger)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cv.Verify(signed, t0.Add(time.Hour))
	if err != nil || len(v.Cosignatures) != 2 || v.Checkpoint.Size != 9 {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	// w2's timestamp is an hour after t0: in the future at t0.
	var fe *FutureCosignatureError
	if _, err := cv.Verify(signed, t0); !errors.As(err, &fe) || fe.Witness != "w2" {
		t.Fatalf("at t0: %v, want a *FutureCosignatureError of w2", err)
	}
	// A tampered cosignature refuses the note, even though 1 of 2 would do.
	cv.Policy.Quorum = 1
	_, lines, _ := SplitNote(signed)
	s, _ := parseSignatureLine(lines[1])
	raw, _ := base64.StdEncoding.DecodeString(s.Base64)
	raw[20] ^= 1
	lines[1] = "— w1 " + base64.StdEncoding.EncodeToString(raw)
	tampered := []byte(text + "\n" + strings.Join(lines, "\n") + "\n")
	if _, err := cv.Verify(tampered, t0.Add(time.Hour)); err == nil {
		t.Fatal("tampered cosignature accepted")
	}
	// Only the log's signature: not witnessed.
	logOnly := lg.sign(t, 9, tlog.Hash{9})
	var qe *QuorumError
	if _, err := cv.Verify(logOnly, t0); !errors.As(err, &qe) || qe.Have != 0 {
		t.Fatalf("log-only: %v", err)
	}
	// Cosignatures without the log signature: refused.
	noLog, _ := note.Sign(&note.Note{Text: text}, w1, w2)
	if _, err := cv.Verify(noLog, t0.Add(time.Hour)); err == nil {
		t.Fatal("checkpoint without the log signature accepted")
	}
	// Wrong origin.
	other := newTestLog(t, "example.com/other")
	cv2 := CheckpointVerifier{Origin: lg.origin, Log: other.verifier(t), Policy: Policy{}}
	if _, err := cv2.Verify(other.sign(t, 1, tlog.Hash{}), t0); err == nil {
		t.Fatal("other origin accepted")
	}
	// Non-canonical signature base64.
	lines[1] = "— w1 " + nonCanonicalSig(s.Base64)
	if _, err := cv.Verify([]byte(text+"\n"+strings.Join(lines, "\n")+"\n"), t0.Add(time.Hour)); err == nil {
		t.Fatal("non-canonical base64 signature accepted")
	}
}

// nonCanonicalSig sets unused low bits of a base64 string with padding.
func nonCanonicalSig(b64 string) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexRune(b64, '=') - 1
	j := strings.IndexByte(alpha, b64[i])
	return b64[:i] + string(alpha[j|1]) + b64[i+1:]
}

func TestMergeCosignatures(t *testing.T) {
	lg := newTestLog(t, "o")
	w1, _ := NewCosignatureSigner("w1", edKey{seeded("w1")}, fixed(t0))
	signed := lg.sign(t, 1, tlog.Hash{1})
	n, _ := note.Open(signed, note.VerifierList(lg.verifier(t)))
	both, _ := note.Sign(&note.Note{Text: n.Text}, w1)
	wn, _ := note.Open(both, note.VerifierList(mustVerifier(t, w1.VerifierKey())))
	merged, err := MergeCosignatures(signed, wn.Sigs[0], wn.Sigs[0])
	if err != nil {
		t.Fatal(err)
	}
	again, err := MergeCosignatures(merged, wn.Sigs[0])
	if err != nil || string(again) != string(merged) {
		t.Fatalf("merge is not idempotent: %q", again)
	}
	if strings.Count(string(merged), "— w1 ") != 1 || !strings.HasPrefix(string(merged), string(signed)) {
		t.Fatalf("merged:\n%s", merged)
	}
	if _, err := note.Open(merged, note.VerifierList(lg.verifier(t), mustVerifier(t, w1.VerifierKey()))); err != nil {
		t.Fatal(err)
	}
}

func mustVerifier(t testing.TB, vkey string) note.Verifier {
	t.Helper()
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
