// Package litewitness proves securelog's tlog-witness client and cosignature
// verifier against a witness we did not write: litewitness from
// filippo.io/torchwood v0.6.1 (a tool dependency in go.mod), holding its key
// in a real OpenSSH ssh-agent (Debian package openssh-client).
package litewitness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
)

const (
	origin      = "securelog.test/litewitness-log"
	witnessName = "witness.test/litewitness"
)

// buildLitewitness compiles the go.mod tool filippo.io/torchwood/cmd/litewitness.
func buildLitewitness(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build litewitness: %v", err)
	}
	bin := filepath.Join(dir, "litewitness")
	cmd := exec.Command(goBin, "build", "-o", bin, "filippo.io/torchwood/cmd/litewitness")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build litewitness: %v\n%s", err, out)
	}
	return bin
}

// startAgent runs OpenSSH's ssh-agent on a fresh socket and loads key.
func startAgent(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	bin, err := exec.LookPath("ssh-agent")
	if err != nil {
		t.Fatalf("ssh-agent not found (install the openssh-client package): %v", err)
	}
	// Unix socket paths are limited to ~108 bytes: a short directory.
	dir, err := os.MkdirTemp("", "lwa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	cmd := exec.Command(bin, "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var conn net.Conn
	waitFor(t, "ssh-agent socket "+sock, func() bool {
		conn, err = net.Dial("unix", sock)
		return err == nil
	})
	defer conn.Close()
	if err := agent.NewClient(conn).Add(agent.AddedKey{PrivateKey: key, Comment: "litewitness test key"}); err != nil {
		t.Fatalf("add key to ssh-agent: %v", err)
	}
	return sock
}

// seedDB creates litewitness's database with its own schema
// (internal/witness/witness.go) and the rows witnessctl add-log and add-key
// would write: the log at size 0 with the empty tree's hash, and its key.
func seedDB(t *testing.T, path, origin, vkey string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	empty := sha256.Sum256(nil)
	_, err = db.Exec(`
		CREATE TABLE IF NOT EXISTS log (
			origin TEXT PRIMARY KEY,
			tree_size INTEGER NOT NULL,
			tree_hash TEXT NOT NULL -- base64-encoded
		);
		CREATE TABLE IF NOT EXISTS key (
			origin TEXT NOT NULL,
			key TEXT NOT NULL, -- note verifier key
			FOREIGN KEY(origin) REFERENCES log(origin)
		);`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO log (origin, tree_size, tree_hash) VALUES (?, 0, ?)`, origin, base64.StdEncoding.EncodeToString(empty[:])); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO key (origin, key) VALUES (?, ?)`, origin, vkey); err != nil {
		t.Fatal(err)
	}
}

// dbSize reads the size litewitness recorded for the log.
func dbSize(t *testing.T, path, origin string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT tree_size FROM log WHERE origin = ?`, origin).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// syncBuffer is a goroutine-safe stderr sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startLitewitness runs the litewitness binary bin as witnessName on addr
// with its database at dbPath and its key (fingerprint) in the ssh-agent at
// sock, until the test ends, and returns its stderr (logged if the test
// fails).
func startLitewitness(t *testing.T, bin, dbPath, sock, fingerprint, addr string) *syncBuffer {
	t.Helper()
	stderr := &syncBuffer{}
	lw := exec.Command(bin, "-db", dbPath, "-ssh-agent", sock, "-key", fingerprint, "-name", witnessName, "-listen", addr)
	lw.Stderr = stderr
	if err := lw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = lw.Process.Signal(os.Interrupt)
		_ = lw.Wait()
		if t.Failed() {
			t.Logf("litewitness stderr:\n%s", stderr.String())
		}
	})
	waitFor(t, "litewitness listening on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return stderr
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// memTree is an RFC 6962 tree over entry hashes, with the field's library.
type memTree struct {
	salt   string // distinguishes the leaves of a fork
	hashes []xtlog.Hash
}

func (m *memTree) ReadHashes(idx []int64) ([]xtlog.Hash, error) {
	out := make([]xtlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memTree) appendLeaves(t *testing.T, n *int64, k int) xtlog.Hash {
	t.Helper()
	for range k {
		leaf := sha256.Sum256(fmt.Appendf(nil, "%sentry %d", m.salt, *n)) // leaf data: a 32-byte entry hash
		hs, err := xtlog.StoredHashes(*n, leaf[:], m)
		if err != nil {
			t.Fatal(err)
		}
		m.hashes = append(m.hashes, hs...)
		*n++
	}
	h, err := xtlog.TreeHash(*n, m)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLitewitnessCosignsOurCheckpoints(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildLitewitness(t, dir)

	// Our log: an Ed25519 key in the software keystore, checkpoints signed
	// with the tlog package's note signer.
	ks, err := keystore.OpenSoftware(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := ks.Generate("tlog", keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := tlog.NewNoteSigner(origin, logKey)
	if err != nil {
		t.Fatal(err)
	}
	logVKey, err := tlog.VerifierKey(origin, logKey.PublicKey())
	if err != nil {
		t.Fatal(err)
	}

	// The witness: its key in ssh-agent, its database seeded directly.
	seed := sha256.Sum256([]byte("litewitness test witness"))
	wkey := ed25519.NewKeyFromSeed(seed[:])
	sock := startAgent(t, wkey)
	sshPub, err := ssh.NewPublicKey(wkey.Public())
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "litewitness.db")
	seedDB(t, dbPath, origin, logVKey)
	addr := freeAddr(t)
	stderr := startLitewitness(t, bin, dbPath, sock, ssh.FingerprintSHA256(sshPub), addr)

	// The vkey we compute for the witness is the one litewitness prints.
	wantVKey := tlogwitness.VerifierKey(witnessName, tlogwitness.SigTypeCosignatureV1, wkey.Public().(ed25519.PublicKey))
	m := regexp.MustCompile(`vkey="?([^"\s]+)`).FindStringSubmatch(stderr.String())
	if m == nil || m[1] != wantVKey {
		t.Fatalf("litewitness announced vkey %v, we compute %s", m, wantVKey)
	}

	opts := tlogwitness.Options{Witnesses: []tlogwitness.WitnessConfig{{URL: "http://" + addr, VKey: wantVKey}}, Quorum: 1}
	client, err := tlogwitness.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	logVerifier, err := tlogwitness.NewVerifier(logVKey)
	if err != nil {
		t.Fatal(err)
	}
	verifier := tlogwitness.CheckpointVerifier{Origin: origin, Log: logVerifier, Policy: client.Policy()}
	tree := &memTree{}
	var size int64
	proofs := tlogwitness.HashReaderProofs(tree)
	sign := func(n int64, h xtlog.Hash) []byte {
		msg, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: origin, Size: n, Root: h}, logSigner)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}

	var last []byte
	for i, k := range []int{3, 0, 14, 1000, 1} {
		if i == 3 {
			client, _ = tlogwitness.New(opts) // restarted: learns the size through 409
		}
		root := tree.appendLeaves(t, &size, k)
		res, err := client.Submit(ctx, sign(size, root), proofs)
		if err != nil {
			t.Fatalf("checkpoint %d (size %d): %v", i, size, err)
		}
		v, err := verifier.Verify(res.Cosigned, time.Now())
		if err != nil {
			t.Fatalf("checkpoint %d: our verifier refuses litewitness's cosignature: %v", i, err)
		}
		if len(v.Cosignatures) != 1 || v.Cosignatures[0].Witness != witnessName || time.Since(v.Cosignatures[0].Time) > time.Minute {
			t.Fatalf("checkpoint %d: cosignatures %+v", i, v.Cosignatures)
		}
		// Independent check of the whole note with x/mod's note and our cosignature verifier.
		wv, _ := tlogwitness.NewVerifier(wantVKey)
		if _, err := note.Open(res.Cosigned, note.VerifierList(logVerifier, wv)); err != nil {
			t.Fatal(err)
		}
		last = res.Cosigned
	}
	if got := dbSize(t, dbPath, origin); got != size {
		t.Fatalf("litewitness recorded size %d, want %d", got, size)
	}

	// A tampered cosignature is refused: one bit of the signature, or of
	// the timestamp, or the cosignature moved onto another checkpoint.
	text, lines, err := tlogwitness.SplitNote(last)
	if err != nil {
		t.Fatal(err)
	}
	wline := lines[len(lines)-1]
	if !strings.HasPrefix(wline, "— "+witnessName+" ") {
		t.Fatalf("last signature line %q is not the witness's", wline)
	}
	b64 := wline[strings.LastIndexByte(wline, ' ')+1:]
	raw, _ := base64.StdEncoding.DecodeString(b64)
	for _, i := range []int{6, 12, 40, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x10
		lines[len(lines)-1] = "— " + witnessName + " " + base64.StdEncoding.EncodeToString(bad)
		tampered := []byte(text + "\n" + strings.Join(lines, "\n") + "\n")
		var inv *note.InvalidSignatureError
		if _, err := verifier.Verify(tampered, time.Now()); !errors.As(err, &inv) {
			t.Errorf("byte %d of the cosignature flipped: %v, want *note.InvalidSignatureError", i, err)
		}
	}
	lines[len(lines)-1] = wline
	otherRoot := tree.appendLeaves(t, &size, 1)
	moved, err := tlogwitness.MergeCosignatures(sign(size, otherRoot), note.Signature{Name: witnessName, Hash: tlogwitness.KeyID(witnessName, 4, wkey.Public().(ed25519.PublicKey)), Base64: b64})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(moved, time.Now()); err == nil {
		t.Fatal("a cosignature of another checkpoint was accepted")
	}

	// A checkpoint inconsistent with what litewitness cosigned: it refuses
	// (422 for a proof that does not verify), so no quorum.
	fork := &memTree{salt: "fork "}
	var forkSize int64
	forkRoot := fork.appendLeaves(t, &forkSize, int(size)+5)
	res, err := client.Submit(ctx, sign(forkSize, forkRoot), tlogwitness.HashReaderProofs(fork))
	var qe *tlogwitness.QuorumError
	if !errors.As(err, &qe) || res.Witnessed || len(res.Failures) != 1 || res.Failures[0].Status != 422 {
		t.Fatalf("fork: err %v, failures %v; want a quorum error after a 422", err, res.Failures)
	}
}
