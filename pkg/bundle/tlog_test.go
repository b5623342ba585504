package bundle_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/wire"
)

// tlogLog is a log with the RFC 6962 tree, a signed segment of stream
// "s" among entries of other streams, its trust (with vkey) and a witness.
type tlogLog struct {
	st      *memory.Store
	tree    *tlog.Tree
	trust   []checkpoint.TrustEntry
	signer  note.Signer
	witness *tlogwitness.CosignatureSigner
	wv      note.Verifier
	l       *securelog.Log
}

func newTlogLog(t *testing.T) *tlogLog {
	t.Helper()
	ctx := context.Background()
	ks, err := keystore.OpenSoftware(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.Generate("log", keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	origin := tlog.DefaultOrigin("log")
	vkey, _ := tlog.VerifierKey(origin, k.PublicKey())
	trust := []checkpoint.TrustEntry{{Identity: "log", Algorithm: keystore.Ed25519, PublicKey: k.PublicKey(), VKey: vkey}}
	tr, _ := checkpoint.NewTrust(trust...)
	st := memory.New()
	tree, err := tlog.NewTree(st)
	if err != nil {
		t.Fatal(err)
	}
	l := securelog.New(st, securelog.Options{Signer: ks, Trust: tr, CommitHook: tree, Logger: slog.New(slog.DiscardHandler)})
	if err := l.Open(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer, err := tlog.NewNoteSigner(origin, k)
	if err != nil {
		t.Fatal(err)
	}
	_, wpriv, _ := ed25519.GenerateKey(nil)
	wk, _ := keystore.KeyFromSigner(wpriv)
	ws, err := tlogwitness.NewCosignatureSigner("w.example/1", wk, nil)
	if err != nil {
		t.Fatal(err)
	}
	wv, _ := tlogwitness.NewVerifier(ws.VerifierKey())
	return &tlogLog{st: st, tree: tree, trust: trust, signer: signer, witness: ws, wv: wv, l: l}
}

func (g *tlogLog) append(t *testing.T, stream string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := g.l.Append(context.Background(), stream, "t", wire.Info, "p", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpoint signs the tree now and cosigns it with the witness.
func (g *tlogLog) checkpoint(t *testing.T) []byte {
	t.Helper()
	size, root, err := g.tree.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: g.signer.Name(), Size: size, Root: root}, g.signer, g.witness)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// export writes stream s with the tlog member (or without, ck nil).
func (g *tlogLog) export(t *testing.T, ck []byte) []byte {
	t.Helper()
	var opts bundle.WriteOptions
	if ck != nil {
		opts.Tlog = &bundle.Tlog{Checkpoint: ck, Hashes: tlog.TileHashes(g.tree.Tiles(context.Background()))}
	}
	var buf bytes.Buffer
	if _, err := bundle.WriteWith(context.Background(), &buf, audit.StoreSource{Store: g.st}, "s", g.trust, nil, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func auditBytes(t *testing.T, data []byte, opts bundle.AuditOptions) (bundle.AuditReport, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "b.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Open(path)
	if err != nil {
		return bundle.AuditReport{}, err
	}
	defer r.Close()
	return bundle.Audit(context.Background(), r, opts)
}

// A bundle carries the log's cosigned C2SP checkpoint and an inclusion
// proof of every exported entry; the audit checks the checkpoint with the
// trust's vkey and the witness policy, and each entry inside it. Without
// the checkpoint the bundle bytes are what they were.
func TestBundleCarriesCosignedCheckpoint(t *testing.T) {
	g := newTlogLog(t)
	for range 3 {
		g.append(t, "s", 5)
		g.append(t, "other", 7)
	}
	ck := g.checkpoint(t)
	plain := g.export(t, nil)
	withTlog := g.export(t, ck)
	if !bytes.HasPrefix(withTlog, bytes.TrimSuffix(plain, []byte("}\n"))) {
		t.Fatal("the tlog member changed the bytes before it")
	}
	trust, _ := checkpoint.NewTrust(g.trust...)
	policy := bundle.AuditOptions{Trust: trust, TlogWitnesses: []note.Verifier{g.wv}}
	rep, err := auditBytes(t, withTlog, policy)
	if err != nil {
		t.Fatal(err)
	}
	if rep.TlogProved != 15 || rep.TlogSize != 36 || len(rep.TlogCosigners) != 1 {
		t.Fatalf("report %+v", rep)
	}
	if rep, err := auditBytes(t, plain, policy); err != nil || rep.TlogSize != 0 {
		t.Fatalf("plain bundle: %+v %v", rep, err)
	}

	// A policy witness that did not cosign: refused.
	_, other, _ := ed25519.GenerateKey(nil)
	ok, _ := keystore.KeyFromSigner(other)
	os, _ := tlogwitness.NewCosignatureSigner("w.example/2", ok, nil)
	ov, _ := tlogwitness.NewVerifier(os.VerifierKey())
	var qe *tlogwitness.QuorumError
	if _, err := auditBytes(t, withTlog, bundle.AuditOptions{Trust: trust, TlogWitnesses: []note.Verifier{g.wv, ov}}); !errors.As(err, &qe) {
		t.Fatalf("2-of-2 policy: %v", err)
	}

	// Entries appended after the checkpoint are not in it.
	g.append(t, "s", 2)
	late := g.export(t, ck)
	if _, err := auditBytes(t, late, policy); err == nil || !strings.Contains(err.Error(), "after the tlog checkpoint") {
		t.Fatalf("entries after the checkpoint: %v", err)
	}
	policy.AllowUnsignedTail = true
	if rep, err := auditBytes(t, late, policy); err != nil || rep.TlogOutside != 2 {
		t.Fatalf("tail allowed: %+v %v", rep, err)
	}
}

// Tampering with the checkpoint, a cosignature or a proof fails the audit.
func TestBundleTlogTampered(t *testing.T) {
	g := newTlogLog(t)
	g.append(t, "s", 4)
	g.append(t, "other", 3)
	g.append(t, "s", 4)
	data := g.export(t, g.checkpoint(t))
	trust, _ := checkpoint.NewTrust(g.trust...)
	opts := bundle.AuditOptions{Trust: trust, TlogWitnesses: []note.Verifier{g.wv}, Now: time.Now}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	tl := doc["tlog"].(map[string]any)
	note0 := tl["checkpoint"].(string)
	proofs := tl["proofs"].([]any)
	for name, mut := range map[string]func(){
		"root": func() {
			lines := strings.SplitN(note0, "\n", 4)
			lines[2] = tlog.EncodeHash([32]byte{1})
			tl["checkpoint"] = strings.Join(lines, "\n")
		},
		"cosignature": func() {
			i := strings.LastIndex(note0, " ")
			b := []byte(note0)
			b[i+5] ^= 1
			if b[i+5] == '\n' || b[i+5] == '=' {
				b[i+5] = 'A'
			}
			tl["checkpoint"] = string(b)
		},
		"proof hash": func() {
			p := proofs[1].(map[string]any)["proof"].([]any)
			p[0] = tlog.EncodeHash([32]byte{2})
		},
		"proof seqno":   func() { proofs[1].(map[string]any)["seqno"] = 99.0 },
		"missing proof": func() { tl["proofs"] = proofs[:len(proofs)-1] },
		"extra proof":   func() { tl["proofs"] = append(append([]any{}, proofs...), proofs[0]) },
	} {
		t.Run(name, func(t *testing.T) {
			var d map[string]any
			_ = json.Unmarshal(data, &d)
			doc = d
			tl = d["tlog"].(map[string]any)
			proofs = tl["proofs"].([]any)
			mut()
			b, _ := json.Marshal(d)
			if _, err := auditBytes(t, b, opts); err == nil {
				t.Fatal("tampered bundle audits")
			}
		})
	}
}
