package witnessd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/keystore"
	sltlog "github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
)

// TlogAddCheckpointPath is where the witness serves C2SP tlog-witness
// add-checkpoint (its submission prefix is the server root).
const TlogAddCheckpointPath = tlogwitness.AddCheckpointPath

// AlertTlogEquivocation: a log key signed two different roots for one tree
// size (a second checkpoint inconsistent with one the witness cosigned).
const AlertTlogEquivocation = "tlog-equivocation"

// TlogLog is a log the tlog-witness cosigns for.
type TlogLog struct {
	// Origin is the log's checkpoint origin line.
	Origin string
	// VerifierKeys are the log's note verifier keys (vkeys, Ed25519 type
	// 0x01); a checkpoint needs a valid signature by one of them.
	VerifierKeys []string
}

// TlogConfig enables the C2SP tlog-witness endpoint (POST
// /add-checkpoint) beside the v1 submission protocol.
type TlogConfig struct {
	// Name is the cosigner name in signature lines and the vkey
	// (Config.Identity if empty). Give it a schema-less URL, e.g.
	// "witness.example.com/w1".
	Name string
	// Key is the cosigning key, Ed25519 (Config.Key if nil).
	Key keystore.Key
	// Logs are the logs the witness knows; other origins get 404.
	Logs []TlogLog
	// State persists the latest cosigned head per origin (required; e.g.
	// OpenTreeHeads). The server does not close it.
	State TreeHeadStore
}

// tlogWitness is the tlog-witness side of a Server.
type tlogWitness struct {
	signer *tlogwitness.CosignatureSigner
	logs   map[string]note.Verifiers
	state  TreeHeadStore
	locks  sync.Map // origin → *sync.Mutex

	requests *prometheus.CounterVec
}

// initTlog sets up the tlog-witness endpoint from cfg.Tlog (nil: off).
func (s *Server) initTlog(cfg Config) error {
	tc := cfg.Tlog
	if tc == nil {
		return nil
	}
	if tc.State == nil {
		return errors.New("witnessd: tlog-witness: no state store (TlogConfig.State)")
	}
	name, key := tc.Name, tc.Key
	if name == "" {
		name = s.identity
	}
	if key == nil {
		key = cfg.Key
	}
	if key.Algorithm() != keystore.Ed25519 {
		return fmt.Errorf("witnessd: tlog-witness key algorithm %q, want %q", key.Algorithm(), keystore.Ed25519)
	}
	signer, err := tlogwitness.NewCosignatureSigner(name, key, s.now)
	if err != nil {
		return fmt.Errorf("witnessd: tlog-witness: %w", err)
	}
	tw := &tlogWitness{signer: signer, logs: map[string]note.Verifiers{}, state: tc.State}
	for _, l := range tc.Logs {
		var vs []note.Verifier
		for _, k := range l.VerifierKeys {
			v, err := note.NewVerifier(k)
			if err != nil {
				return fmt.Errorf("witnessd: tlog-witness: log %q: vkey %q: %w", l.Origin, k, err)
			}
			vs = append(vs, v)
		}
		if l.Origin == "" || len(vs) == 0 {
			return fmt.Errorf("witnessd: tlog-witness: log %q needs an origin and at least one vkey", l.Origin)
		}
		if _, dup := tw.logs[l.Origin]; dup {
			return fmt.Errorf("witnessd: tlog-witness: log %q configured twice", l.Origin)
		}
		tw.logs[l.Origin] = note.VerifierList(vs...)
	}
	tw.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "securelog_witness_tlog_add_checkpoint_total",
		Help: "C2SP tlog-witness add-checkpoint requests by HTTP status and reason (ok, malformed, too-large, too-many-proof-lines, unknown-origin, bad-signature, no-trusted-signature, old-after-new, conflict, bad-proof, root-mismatch, bad-empty-tree, error).",
	}, []string{"code", "reason"})
	s.reg.MustRegister(tw.requests)
	s.tlog = tw
	return nil
}

// TlogVerifierKey returns the vkey of the witness's cosignature/v1 key
// ("" when the tlog-witness endpoint is off): what a log operator adds to
// its witness policy.
func (s *Server) TlogVerifierKey() string {
	if s.tlog == nil {
		return ""
	}
	return s.tlog.signer.VerifierKey()
}

// routeTlog registers POST /add-checkpoint when the endpoint is on.
func (s *Server) routeTlog(mux *http.ServeMux) {
	if s.tlog != nil {
		mux.HandleFunc("POST "+TlogAddCheckpointPath, s.serveAddCheckpoint)
	}
}

// addOutcome is the answer to one add-checkpoint request.
type addOutcome struct {
	code   int
	reason string // metric label
	detail string // text body / log message
	size   int64  // 409: the latest cosigned size
	cosig  []byte // 200: signature lines
}

func refuseAdd(code int, reason, format string, args ...any) addOutcome {
	return addOutcome{code: code, reason: reason, detail: fmt.Sprintf(format, args...)}
}

func (s *Server) serveAddCheckpoint(w http.ResponseWriter, r *http.Request) {
	var out addOutcome
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, tlogwitness.MaxRequestBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		out = refuseAdd(http.StatusRequestEntityTooLarge, "too-large", "request body larger than %d bytes", tlogwitness.MaxRequestBytes)
	case err != nil:
		out = refuseAdd(http.StatusBadRequest, "malformed", "read request body: %v", err)
	default:
		out = s.addCheckpoint(r.Context(), body)
	}
	s.tlog.requests.WithLabelValues(fmt.Sprint(out.code), out.reason).Inc()
	switch out.code {
	case http.StatusOK:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out.cosig)
		return
	case http.StatusConflict:
		w.Header().Set("Content-Type", tlogwitness.SizeContentType)
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write(tlogwitness.FormatSizeBody(out.size))
	default:
		http.Error(w, out.detail, out.code)
	}
	if out.code >= 500 {
		s.log.Error("tlog-witness: add-checkpoint failed", "error", out.detail)
	} else {
		s.log.Warn("tlog-witness: refused checkpoint", "code", out.code, "reason", out.reason, "detail", out.detail)
	}
}

// addCheckpoint decides one add-checkpoint request body (c2sp.org/tlog-witness)
// and, if it passes, persists the new head and cosigns. In order:
//
//   - 400 malformed body, note or checkpoint (including > 63 proof lines
//     and non-canonical base64);
//   - 404 unknown origin;
//   - 403 no valid signature by a trusted key of the origin, or a trusted
//     key's signature that fails;
//   - 400 old size larger than the checkpoint size;
//   - 409 old size ≠ the latest cosigned size (answer: that size);
//   - 422 size 0 without the empty-tree root, a proof when none is
//     possible, a consistency proof that fails, or the same size with a
//     different root;
//   - 200 and the cosignature lines, after the new head is persisted
//     (compare-and-swap on the old size: a concurrent advance gives 409).
//
// A validly signed checkpoint whose root differs from one the witness
// cosigned at the same size raises an AlertTlogEquivocation, whatever the
// answer. Nothing is stored for a refused request.
func (s *Server) addCheckpoint(ctx context.Context, body []byte) addOutcome {
	tw := s.tlog
	req, err := tlogwitness.ParseAddCheckpointRequest(body)
	if err != nil {
		var tm *tlogwitness.TooManyProofLinesError
		if errors.As(err, &tm) {
			return refuseAdd(http.StatusBadRequest, "too-many-proof-lines", "%v", err)
		}
		return refuseAdd(http.StatusBadRequest, "malformed", "%v", err)
	}
	text, _, err := tlogwitness.SplitNote(req.Checkpoint)
	if err != nil {
		return refuseAdd(http.StatusBadRequest, "malformed", "checkpoint note: %v", err)
	}
	origin, _, _ := bytes.Cut([]byte(text), []byte("\n"))
	verifiers, ok := tw.logs[string(origin)]
	if !ok {
		return refuseAdd(http.StatusNotFound, "unknown-origin", "unknown log origin %q", origin)
	}
	n, err := note.Open(req.Checkpoint, verifiers)
	if err != nil {
		var inv *note.InvalidSignatureError
		var unv *note.UnverifiedNoteError
		switch {
		case errors.As(err, &inv):
			return refuseAdd(http.StatusForbidden, "bad-signature", "checkpoint of %q: %v", origin, err)
		case errors.As(err, &unv):
			return refuseAdd(http.StatusForbidden, "no-trusted-signature", "checkpoint of %q carries no signature by a trusted key of the log", origin)
		}
		return refuseAdd(http.StatusBadRequest, "malformed", "checkpoint note of %q: %v", origin, err)
	}
	c, err := sltlog.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return refuseAdd(http.StatusBadRequest, "malformed", "%v", err)
	}
	if req.OldSize > c.Size {
		return refuseAdd(http.StatusBadRequest, "old-after-new", "old size %d is larger than the checkpoint size %d", req.OldSize, c.Size)
	}
	mu, _ := tw.locks.LoadOrStore(c.Origin, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if out, done := s.checkEquivocation(ctx, c, req.Checkpoint); done {
		return out
	}
	latest, _, err := tw.state.Latest(ctx, c.Origin)
	if err != nil {
		return refuseAdd(http.StatusInternalServerError, "error", "%v", err)
	}
	if req.OldSize != latest.Size {
		return addOutcome{code: http.StatusConflict, reason: "conflict", size: latest.Size,
			detail: fmt.Sprintf("old size %d, the latest cosigned size of %q is %d", req.OldSize, c.Origin, latest.Size)}
	}
	if out, ok := checkConsistency(req, c, latest); !ok {
		return out
	}
	now := s.now().Unix()
	err = tw.state.Advance(ctx, c.Origin, req.OldSize, TreeHead{Size: c.Size, Hash: c.Root, Checkpoint: req.Checkpoint, CosignedAt: now})
	var conflict *TreeHeadConflictError
	if errors.As(err, &conflict) {
		return addOutcome{code: http.StatusConflict, reason: "conflict", size: conflict.Current, detail: err.Error()}
	}
	if err != nil {
		return refuseAdd(http.StatusInternalServerError, "error", "%v", err)
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, tw.signer)
	if err != nil {
		return refuseAdd(http.StatusInternalServerError, "error", "cosign %q at %d: %v", c.Origin, c.Size, err)
	}
	s.log.Debug("tlog-witness cosigned", "origin", c.Origin, "size", c.Size, "old", req.OldSize)
	return addOutcome{code: http.StatusOK, reason: "ok", cosig: signed[len(n.Text)+1:]}
}

// checkConsistency applies the spec's 422 rules to a request whose old
// size is the latest cosigned size.
func checkConsistency(req tlogwitness.AddCheckpointRequest, c tlogwitness.Checkpoint, latest TreeHead) (addOutcome, bool) {
	switch {
	case c.Size == 0 && c.Root != tlogwitness.EmptyTreeHash:
		return refuseAdd(http.StatusUnprocessableEntity, "bad-empty-tree", "checkpoint of size 0 with root %s, not the empty tree's", c.Root), false
	case req.OldSize == 0:
		if len(req.Proof) != 0 {
			return refuseAdd(http.StatusUnprocessableEntity, "bad-proof", "old size 0 with %d proof lines, want none", len(req.Proof)), false
		}
	case req.OldSize == c.Size:
		if c.Root != latest.Hash {
			return refuseAdd(http.StatusUnprocessableEntity, "root-mismatch", "size %d was cosigned with root %s; this checkpoint has %s", c.Size, latest.Hash, c.Root), false
		}
		if len(req.Proof) != 0 {
			return refuseAdd(http.StatusUnprocessableEntity, "bad-proof", "old size equals the size with %d proof lines, want none", len(req.Proof)), false
		}
	default:
		if err := tlog.CheckTree(req.Proof, c.Size, c.Root, req.OldSize, latest.Hash); err != nil {
			return refuseAdd(http.StatusUnprocessableEntity, "bad-proof", "consistency proof %d → %d does not verify: %v", req.OldSize, c.Size, err), false
		}
	}
	return addOutcome{}, true
}

// checkEquivocation compares a validly signed checkpoint with the head the
// witness cosigned at the same size, if any. Two roots for one size are
// proof that the log key signed inconsistent checkpoints: alert, and
// refuse with the spec's code (422 when the old size is that size, else
// the 409 the size rule gives).
func (s *Server) checkEquivocation(ctx context.Context, c tlogwitness.Checkpoint, signed []byte) (addOutcome, bool) {
	prev, ok, err := s.tlog.state.At(ctx, c.Origin, c.Size)
	if err != nil {
		return refuseAdd(http.StatusInternalServerError, "error", "%v", err), true
	}
	if !ok || prev.Hash == c.Root {
		return addOutcome{}, false
	}
	s.raise(Alert{Stream: c.Origin, Kind: AlertTlogEquivocation, Detail: fmt.Sprintf(
		"log %q signed two roots for tree size %d: %s (cosigned at %d) and %s.\nCosigned checkpoint:\n%s\nNew checkpoint:\n%s",
		c.Origin, c.Size, prev.Hash, prev.CosignedAt, c.Root, prev.Checkpoint, signed)})
	return addOutcome{}, false
}
