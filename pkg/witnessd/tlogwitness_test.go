package witnessd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/wire"
)

const testOrigin = "example.com/behind-the-sofa"

// tlogFixture is a log (note key + RFC 6962 tree) and a witness serving
// tlog-witness for it over HTTP.
type tlogFixture struct {
	t      *testing.T
	signer note.Signer
	vkey   string
	tree   *hashTree
	state  *SQLiteTreeHeads
	srv    *Server
	hs     *httptest.Server
	alerts *alertSink
}

func newTlogFixture(t *testing.T, mod func(*Config)) *tlogFixture {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	state, err := OpenTreeHeads(t.Context(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { state.Close() })
	fx := &tlogFixture{t: t, signer: signer, vkey: vkey, tree: &hashTree{}, state: state, alerts: &alertSink{}}
	fx.srv = newWitness(t, newFixture(t).trust, func(c *Config) {
		c.Tlog = &TlogConfig{Name: "witness.example/w1", State: state, Logs: []TlogLog{{Origin: testOrigin, VerifierKeys: []string{vkey}}}}
		c.OnAlert = fx.alerts.add
		if mod != nil {
			mod(c)
		}
	})
	fx.hs = httptest.NewServer(fx.srv.Handler())
	t.Cleanup(fx.hs.Close)
	return fx
}

// checkpoint signs the tree's current checkpoint (grown by k leaves first).
func (fx *tlogFixture) checkpoint(k int) []byte {
	fx.t.Helper()
	n, h := fx.tree.grow(fx.t, k)
	return fx.sign(n, h)
}

func (fx *tlogFixture) sign(n int64, h tlog.Hash) []byte {
	fx.t.Helper()
	msg, err := note.Sign(&note.Note{Text: tlogwitness.Checkpoint{Origin: testOrigin, Size: n, Root: h}.String()}, fx.signer)
	if err != nil {
		fx.t.Fatal(err)
	}
	return msg
}

// body formats a request the way the spec's example does, by hand.
func body(old int64, proof tlog.TreeProof, cp []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.String()
}

func (fx *tlogFixture) post(body string) (int, string, string) {
	fx.t.Helper()
	resp, err := http.Post(fx.hs.URL+"/add-checkpoint", "text/plain", strings.NewReader(body))
	if err != nil {
		fx.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(out)
}

func (fx *tlogFixture) proof(old, n int64) tlog.TreeProof {
	fx.t.Helper()
	p, err := tlog.ProveTree(n, old, fx.tree)
	if err != nil {
		fx.t.Fatal(err)
	}
	return p
}

func (fx *tlogFixture) latest() TreeHead {
	fx.t.Helper()
	h, _, err := fx.state.Latest(context.Background(), testOrigin)
	if err != nil {
		fx.t.Fatal(err)
	}
	return h
}

func (fx *tlogFixture) metric(code int, reason string) float64 {
	return testutil.ToFloat64(fx.srv.tlog.requests.WithLabelValues(fmt.Sprint(code), reason))
}

// hashTree is an in-memory RFC 6962 tree over tlog's stored hashes.
type hashTree struct {
	mu     sync.Mutex
	hashes []tlog.Hash
	n      int64
}

func (m *hashTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
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

func (m *hashTree) grow(t testing.TB, k int) (int64, tlog.Hash) {
	t.Helper()
	for range k {
		hs, err := tlog.StoredHashes(m.n, fmt.Appendf(nil, "entry %d", m.n), m)
		if err != nil {
			t.Fatal(err)
		}
		m.mu.Lock()
		m.hashes = append(m.hashes, hs...)
		m.n++
		m.mu.Unlock()
	}
	if m.n == 0 {
		return 0, tlogwitness.EmptyTreeHash
	}
	h, err := tlog.TreeHash(m.n, m)
	if err != nil {
		t.Fatal(err)
	}
	return m.n, h
}

// TestTlogWitnessSpecClient is a client written from the spec's text and
// examples: raw bodies, status codes, the 409 body and Content-Type, the
// 200 signature lines (checked with torchwood's cosignature verifier).
func TestTlogWitnessSpecClient(t *testing.T) {
	fx := newTlogFixture(t, nil)
	wpub := fx.srv.key.PublicKey()
	// torchwood's verifier of the witness key: an implementation not ours.
	tw, err := torchwood.NewCosignatureSigner("witness.example/w1", fx.srv.key.(edKey).priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fx.srv.TlogVerifierKey(), tlogwitness.VerifierKey("witness.example/w1", 0x04, wpub); got != want {
		t.Fatalf("vkey %s, want %s", got, want)
	}
	cosigned := func(cp []byte, answer string) {
		t.Helper()
		if !strings.HasPrefix(answer, "— witness.example/w1 ") || !strings.HasSuffix(answer, "\n") || strings.Count(answer, "\n") != 1 {
			t.Fatalf("200 body %q, want one signature line", answer)
		}
		text, _, _ := tlogwitness.SplitNote(cp)
		n, err := note.Open([]byte(text+"\n"+answer), note.VerifierList(tw.Verifier()))
		if err != nil {
			t.Fatalf("cosignature does not verify: %v", err)
		}
		ts, err := torchwood.CosignatureTimestamp(n.Sigs[0])
		if err != nil || ts == 0 {
			t.Fatalf("timestamp %d, %v", ts, err)
		}
	}

	// 404: an origin the witness does not know.
	skey, _, _ := note.GenerateKey(rand.Reader, "example.com/other")
	other, _ := note.NewSigner(skey)
	otherCP, _ := note.Sign(&note.Note{Text: "example.com/other\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"}, other)
	if code, _, _ := fx.post(body(0, nil, otherCP)); code != 404 {
		t.Fatalf("unknown origin: %d, want 404", code)
	}
	// 403: the right origin signed by another key (same name, other key ID).
	skey2, _, _ := note.GenerateKey(rand.Reader, testOrigin)
	impostor, _ := note.NewSigner(skey2)
	n5, h5 := fx.tree.grow(t, 5)
	forged, _ := note.Sign(&note.Note{Text: tlogwitness.Checkpoint{Origin: testOrigin, Size: n5, Root: h5}.String()}, impostor)
	if code, _, _ := fx.post(body(0, nil, forged)); code != 403 {
		t.Fatalf("untrusted key: %d, want 403", code)
	}
	// 403: the trusted key's signature, tampered.
	cp5 := fx.sign(n5, h5)
	text5, sigs5, _ := tlogwitness.SplitNote(cp5)
	name, b64, _ := strings.Cut(strings.TrimPrefix(sigs5[0], "— "), " ")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	raw[len(raw)-1] ^= 1
	bad := text5 + "\n— " + name + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
	if code, _, _ := fx.post(body(0, nil, []byte(bad))); code != 403 {
		t.Fatalf("tampered signature: %d, want 403", code)
	}
	// 200: first contact from 0.
	code, _, answer := fx.post(body(0, nil, cp5))
	if code != 200 {
		t.Fatalf("first checkpoint: %d %s", code, answer)
	}
	cosigned(cp5, answer)
	// 409: old size 0 again; the body is the cosigned size.
	cp9 := fx.checkpoint(4)
	code, ctype, answer := fx.post(body(0, nil, cp9))
	if code != 409 || ctype != "text/x.tlog.size" || answer != "5\n" {
		t.Fatalf("stale old size: %d %q %q, want 409 text/x.tlog.size \"5\\n\"", code, ctype, answer)
	}
	// 400: old size larger than the checkpoint's.
	if code, _, _ := fx.post(body(10, nil, cp9)); code != 400 {
		t.Fatalf("old > new: %d, want 400", code)
	}
	// 422: a wrong consistency proof.
	p := fx.proof(5, 9)
	wrong := append(tlog.TreeProof(nil), p...)
	wrong[0][0] ^= 1
	if code, _, _ := fx.post(body(5, wrong, cp9)); code != 422 {
		t.Fatalf("bad proof: %d, want 422", code)
	}
	// 200 with the right proof.
	code, _, answer = fx.post(body(5, p, cp9))
	if code != 200 {
		t.Fatalf("consistent checkpoint: %d %s", code, answer)
	}
	cosigned(cp9, answer)
	// Same size, same root: 200 again (idempotent).
	if code, _, _ := fx.post(body(9, nil, cp9)); code != 200 {
		t.Fatalf("same checkpoint again: %d", code)
	}
	if got := fx.latest(); got.Size != 9 {
		t.Fatalf("stored size %d, want 9", got.Size)
	}
	if fx.metric(200, "ok") != 3 || fx.metric(404, "unknown-origin") != 1 || fx.metric(409, "conflict") != 1 || fx.metric(422, "bad-proof") != 1 {
		t.Fatalf("metrics: ok %v, 404 %v, 409 %v, 422 %v", fx.metric(200, "ok"), fx.metric(404, "unknown-origin"),
			fx.metric(409, "conflict"), fx.metric(422, "bad-proof"))
	}
}

// specExample is the example request body of c2sp.org/tlog-witness,
// verbatim: its signatures are by a key our witness does not trust.
const specExample = `old 20852014
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

// TestTlogWitnessSpecExample posts the spec's example body verbatim: its
// origin is known to our witness but signed by other keys (403); under an
// origin the witness does not know, 404.
func TestTlogWitnessSpecExample(t *testing.T) {
	fx := newTlogFixture(t, nil)
	if code, _, out := fx.post(specExample); code != 403 {
		t.Fatalf("spec example: %d %q, want 403", code, out)
	}
	if code, _, out := fx.post(strings.ReplaceAll(specExample, "\nexample.com/behind-the-sofa\n", "\nexample.com/in-the-attic\n")); code != 404 {
		t.Fatalf("spec example, unknown origin: %d %q, want 404", code, out)
	}
	if _, ok, _ := fx.state.Latest(t.Context(), testOrigin); ok {
		t.Fatal("a refused checkpoint was stored")
	}
}

// TestTlogWitnessBadInput: every bad request gets the spec's status, a
// metric, and leaves the stored head untouched.
func TestTlogWitnessBadInput(t *testing.T) {
	fx := newTlogFixture(t, nil)
	cp3 := fx.checkpoint(3)
	if code, _, out := fx.post(body(0, nil, cp3)); code != 200 {
		t.Fatalf("seed: %d %s", code, out)
	}
	cp8 := fx.checkpoint(5)
	p := fx.proof(3, 8)
	good := body(3, p, cp8)
	h := base64.StdEncoding.EncodeToString(p[0][:])
	nonCanon := h[:42] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", h[42])^1]) + h[43:]
	text, sigs, _ := tlogwitness.SplitNote(cp8)
	sig := sigs[0][strings.LastIndexByte(sigs[0], ' ')+1:]
	i := strings.IndexByte(sig, '=') - 1
	nonCanonSig := sig[:i] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", sig[i])^1]) + sig[i+1:]
	n3, h3 := int64(3), fx.latest().Hash
	replay := fx.sign(n3, h3)
	for _, tc := range []struct {
		name   string
		body   string
		code   int
		reason string
	}{
		{"no empty line", strings.Replace(good, "\n\n", "\n", 1), 400, "malformed"},
		{"old with leading zero", strings.Replace(good, "old 3", "old 03", 1), 400, "malformed"},
		{"garbage", "hello", 400, "malformed"},
		{"64 proof lines", "old 3\n" + strings.Repeat(h+"\n", 64) + "\n" + string(cp8), 400, "too-many-proof-lines"},
		{"non-canonical proof base64", strings.Replace(good, h, nonCanon, 1), 400, "malformed"},
		{"non-canonical signature base64", body(3, p, []byte(text+"\n"+strings.Replace(sigs[0], sig, nonCanonSig, 1)+"\n")), 400, "malformed"},
		{"control character in note", body(3, p, bytes.Replace(cp8, []byte("\n8\n"), []byte("\n8\x01\n"), 1)), 400, "malformed"},
		{"size with leading zero", body(3, p, bytes.Replace(cp8, []byte("\n8\n"), []byte("\n08\n"), 1)), 403, "bad-signature"},
		{"wrong origin", body(3, p, bytes.Replace(cp8, []byte(testOrigin), []byte("example.com/sofa"), 1)), 404, "unknown-origin"},
		{"no signature", "old 3\n\n" + text, 400, "malformed"},
		{"oversized body", "old 3\n\n" + strings.Repeat("x", tlogwitness.MaxRequestBytes), 413, "too-large"},
		{"replayed old checkpoint (old = latest)", body(3, nil, fx.sign(2, tlog.Hash{})), 400, "old-after-new"},
		{"replayed old checkpoint (old = its size)", body(2, nil, fx.sign(2, tlog.Hash{})), 409, "conflict"},
		{"replayed cosigned checkpoint from 0", body(0, nil, replay), 409, "conflict"},
		{"proof with old = new", body(3, p[:1], replay), 422, "bad-proof"},
		{"wrong proof", body(3, p[1:], cp8), 422, "bad-proof"},
	} {
		before := fx.metric(tc.code, tc.reason)
		code, _, out := fx.post(tc.body)
		if code != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.name, code, out, tc.code)
			continue
		}
		if fx.metric(tc.code, tc.reason) != before+1 {
			t.Errorf("%s: metric {code=%d,reason=%s} did not count it", tc.name, tc.code, tc.reason)
		}
		if got := fx.latest(); got.Size != 3 || got.Hash != h3 {
			t.Fatalf("%s: stored head changed to %d %s", tc.name, got.Size, got.Hash)
		}
	}
	// Size 0 must carry the empty tree's root (a fresh fixture: the head is at 0).
	fx2 := newTlogFixture(t, nil)
	if code, _, _ := fx2.post(body(0, nil, fx2.sign(0, tlog.Hash{1}))); code != 422 {
		t.Fatalf("size 0 with a non-empty root: %d, want 422", code)
	}
	if code, _, _ := fx2.post(body(0, []tlog.Hash{{1}}, fx2.checkpoint(2))); code != 422 {
		t.Fatalf("old 0 with a proof: %d, want 422", code)
	}
	if code, _, out := fx2.post(body(0, nil, fx2.sign(0, tlogwitness.EmptyTreeHash))); code != 200 {
		t.Fatalf("empty tree: %d %s", code, out)
	}
	if _, ok, _ := fx2.state.Latest(context.Background(), testOrigin); !ok {
		t.Fatal("cosigned empty tree not stored")
	}
}

// TestTlogWitnessEquivocation forces the log key to sign two inconsistent
// checkpoints: the witness refuses the second and raises an alert, on NATS
// too, in the pipeline's wire.AlertMsg shape.
func TestTlogWitnessEquivocation(t *testing.T) {
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	seen := make(chan wire.AlertMsg, 4)
	sub, err := nc.Subscribe(AlertSubjectPrefix+">", func(m *nats.Msg) {
		var msg wire.AlertMsg
		if json.Unmarshal(m.Data, &msg) == nil && m.Subject == AlertSubject(testOrigin) {
			seen <- msg
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	fx := newTlogFixture(t, func(c *Config) { c.NATS = nc })
	cp4 := fx.checkpoint(4)
	if code, _, out := fx.post(body(0, nil, cp4)); code != 200 {
		t.Fatalf("seed: %d %s", code, out)
	}
	// The log key signs a second root for size 4.
	fork := fx.sign(4, tlog.Hash{0xfe})
	if code, _, _ := fx.post(body(4, nil, fork)); code != 422 {
		t.Fatalf("same size, other root: %d, want 422", code)
	}
	// The witness moves on to 6; the fork at 4 replayed from 0 gets the
	// spec's 409 and is still recognised.
	cp6 := fx.checkpoint(2)
	if code, _, out := fx.post(body(4, fx.proof(4, 6), cp6)); code != 200 {
		t.Fatalf("advance: %d %s", code, out)
	}
	if code, _, _ := fx.post(body(0, nil, fork)); code != 409 {
		t.Fatalf("fork replayed: %d, want 409", code)
	}
	for i := range 2 {
		select {
		case a := <-seen:
			if a.Kind != AlertTlogEquivocation || a.Stream != testOrigin || a.Source != "witness" || !strings.Contains(a.Message, "two roots for tree size 4") {
				t.Fatalf("alert %d: %+v", i, a)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("alert %d not published on %s", i, AlertSubject(testOrigin))
		}
	}
	if got := len(fx.alerts.all()); got != 2 {
		t.Fatalf("%d alerts, want 2", got)
	}
	if v := testutil.ToFloat64(fx.srv.alerts.WithLabelValues(AlertTlogEquivocation)); v != 2 {
		t.Fatalf("alert metric %v, want 2", v)
	}
	if got := fx.latest(); got.Size != 6 {
		t.Fatalf("stored size %d, want 6", got.Size)
	}
}

// TestTlogWitnessRace: of two concurrent submissions from the same old
// size, one wins and the other gets 409; the head never rolls back.
func TestTlogWitnessRace(t *testing.T) {
	fx := newTlogFixture(t, nil)
	cp2 := fx.checkpoint(2)
	if code, _, out := fx.post(body(0, nil, cp2)); code != 200 {
		t.Fatalf("seed: %d %s", code, out)
	}
	cp5 := fx.checkpoint(3)
	b5 := body(2, fx.proof(2, 5), cp5)
	cp9 := fx.checkpoint(4)
	b9 := body(2, fx.proof(2, 9), cp9)
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i, b := range []string{b9, b5} {
		wg.Go(func() { codes[i], _, _ = fx.post(b) })
	}
	wg.Wait()
	if codes[0]+codes[1] != 200+409 {
		t.Fatalf("codes %v, want one 200 and one 409", codes)
	}
	want := int64(9)
	if codes[1] == 200 {
		want = 5
	}
	if got := fx.latest(); got.Size != want {
		t.Fatalf("stored size %d, want %d", got.Size, want)
	}
}

// TestTlogWitnessWithOurClient: the tlogwitness client against our witness,
// two witnesses, 2 of 2, over several checkpoints and a restart of the
// client (it re-learns sizes through 409).
func TestTlogWitnessWithOurClient(t *testing.T) {
	fx1 := newTlogFixture(t, nil)
	fx2 := newTlogFixture(t, func(c *Config) {
		c.Key = edKey{seededKey("w2")}
		c.Tlog.Name = "witness.example/w2"
	})
	// Both witnesses must know the same log key.
	fx2.srv.tlog.logs[testOrigin] = fx1.srv.tlog.logs[testOrigin]
	opts := tlogwitness.Options{Witnesses: []tlogwitness.WitnessConfig{
		{URL: fx1.hs.URL, VKey: fx1.srv.TlogVerifierKey()},
		{URL: fx2.hs.URL, VKey: fx2.srv.TlogVerifierKey()},
	}, Logger: quiet}
	c, err := tlogwitness.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	logV, _ := tlogwitness.NewVerifier(fx1.vkey)
	verifier := tlogwitness.CheckpointVerifier{Origin: testOrigin, Log: logV, Policy: c.Policy()}
	proofs := tlogwitness.HashReaderProofs(fx1.tree)
	for i, k := range []int{1, 0, 7, 300} {
		if i == 2 {
			c, _ = tlogwitness.New(opts) // a restarted client knows no sizes
		}
		res, err := c.Submit(t.Context(), fx1.checkpoint(k), proofs)
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		v, err := verifier.Verify(res.Cosigned, time.Now())
		if err != nil || len(v.Cosignatures) != 2 {
			t.Fatalf("submit %d: cosigned note: %v", i, err)
		}
	}
	if fx1.latest().Size != 308 || fx2.latest().Size != 308 {
		t.Fatalf("witness sizes %d, %d", fx1.latest().Size, fx2.latest().Size)
	}
}
