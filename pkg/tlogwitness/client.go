package tlogwitness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Client defaults.
const (
	// DefaultTimeout bounds one add-checkpoint request.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxConflicts is how many 409 answers in a row a submission
	// to one witness follows before giving up.
	DefaultMaxConflicts = 3
)

// WitnessConfig names one witness: where to submit and its key.
type WitnessConfig struct {
	// URL is the witness's submission prefix; requests go to
	// URL + "/add-checkpoint".
	URL string
	// VKey is the witness's cosignature/v1 verifier key (type 0x04).
	VKey string
}

// Options configures a Client.
type Options struct {
	// Witnesses to submit to (M). Required, with distinct names.
	Witnesses []WitnessConfig
	// Quorum is N of the witness policy: how many cosignatures make a
	// checkpoint witnessed (0: all of them).
	Quorum int
	// HTTPClient sends the requests (http.DefaultClient if nil).
	HTTPClient *http.Client
	// Timeout bounds each request (DefaultTimeout if 0).
	Timeout time.Duration
	// MaxConflicts bounds the 409 retries per witness and submission
	// (DefaultMaxConflicts if 0).
	MaxConflicts int
	// MaxClockSkew bounds cosignature timestamps in the future
	// (DefaultMaxClockSkew if 0).
	MaxClockSkew time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Logger receives per-witness outcomes (slog.Default() if nil).
	Logger *slog.Logger
}

// ProofSource gives consistency proofs of the log being witnessed.
// golang.org/x/mod/sumdb/tlog.ProveTree over the log's stored hashes is
// one.
type ProofSource interface {
	// ConsistencyProof returns the RFC 6962 consistency proof from the
	// tree of oldSize leaves to the tree of newSize leaves
	// (0 < oldSize < newSize).
	ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error)
}

// ProofFunc adapts a function to ProofSource.
type ProofFunc func(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error)

// ConsistencyProof calls f.
func (f ProofFunc) ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	return f(ctx, oldSize, newSize)
}

// HashReaderProofs returns the ProofSource over a log's stored hashes
// (tlog.ProveTree).
func HashReaderProofs(r tlog.HashReader) ProofSource {
	return ProofFunc(func(_ context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
		return tlog.ProveTree(newSize, oldSize, r)
	})
}

// witness is one configured witness and what the client knows of it.
type witness struct {
	url      string
	verifier note.Verifier
	// mu serialises submissions to this witness; known is its latest
	// cosigned size as last learnt (-1: unknown).
	mu    sync.Mutex
	known int64
}

// Client submits checkpoints to tlog-witnesses and collects their
// cosignatures. It is safe for concurrent use; submissions to one witness
// are serialised.
type Client struct {
	witnesses    []*witness
	policy       Policy
	hc           *http.Client
	timeout      time.Duration
	maxConflicts int
	skew         time.Duration
	now          func() time.Time
	log          *slog.Logger
}

// New returns a client for the configured witnesses.
func New(opts Options) (*Client, error) {
	if len(opts.Witnesses) == 0 {
		return nil, errors.New("tlogwitness: no witnesses configured")
	}
	c := &Client{hc: opts.HTTPClient, timeout: opts.Timeout, maxConflicts: opts.MaxConflicts,
		skew: opts.MaxClockSkew, now: opts.Now, log: opts.Logger, policy: Policy{Quorum: opts.Quorum}}
	for i, wc := range opts.Witnesses {
		v, err := NewVerifier(wc.VKey)
		if err != nil {
			return nil, fmt.Errorf("tlogwitness: witness %d (%s): %w", i, wc.URL, err)
		}
		if _, ok := v.(*CosignatureVerifier); !ok {
			return nil, fmt.Errorf("tlogwitness: witness %d (%s): vkey %q is not a cosignature/v1 key (type 0x04)", i, wc.URL, wc.VKey)
		}
		if !strings.HasPrefix(wc.URL, "http://") && !strings.HasPrefix(wc.URL, "https://") {
			return nil, fmt.Errorf("tlogwitness: witness %q: URL %q is not http(s)", v.Name(), wc.URL)
		}
		c.witnesses = append(c.witnesses, &witness{url: strings.TrimSuffix(wc.URL, "/"), verifier: v, known: -1})
		c.policy.Witnesses = append(c.policy.Witnesses, v)
	}
	if err := c.policy.Validate(); err != nil {
		return nil, err
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxConflicts <= 0 {
		c.maxConflicts = DefaultMaxConflicts
	}
	if c.skew <= 0 {
		c.skew = DefaultMaxClockSkew
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// Policy returns the client's witness policy.
func (c *Client) Policy() Policy { return c.policy }

// WitnessError is one witness's failure to cosign.
type WitnessError struct {
	// Witness is the witness name; URL its submission prefix.
	Witness, URL string
	// Status is the HTTP status of the last answer (0: no answer).
	Status int
	Err    error
}

func (e *WitnessError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("tlogwitness: witness %q (%s): HTTP %d: %v", e.Witness, e.URL, e.Status, e.Err)
	}
	return fmt.Sprintf("tlogwitness: witness %q (%s): %v", e.Witness, e.URL, e.Err)
}

func (e *WitnessError) Unwrap() error { return e.Err }

// Result is the outcome of one Submit.
type Result struct {
	// Checkpoint is the submitted checkpoint.
	Checkpoint Checkpoint
	// Cosigned is the submitted note with every verified cosignature
	// merged in (MergeCosignatures).
	Cosigned []byte
	// Cosignatures are the verified cosignatures, in witness order.
	Cosignatures []Cosignature
	// Failures are the witnesses that did not cosign.
	Failures []*WitnessError
	// Witnessed reports whether the policy is met.
	Witnessed bool
}

// Submit sends a signed checkpoint to every witness concurrently, starting
// from the size each was last known to have cosigned (0 the first time);
// a 409 answer makes it retry from the size the witness returned, with a
// consistency proof from proofs. Each answer's cosignature is verified
// against the witness's key (tampered, missing, zero-timestamped or
// future-timestamped cosignatures count as failures). Submit returns the
// Result, and a *QuorumError when fewer than the policy's quorum
// cosigned; other errors mean the checkpoint itself is unusable.
func (c *Client) Submit(ctx context.Context, signed []byte, proofs ProofSource) (*Result, error) {
	text, _, err := SplitNote(signed)
	if err != nil {
		return nil, err
	}
	cp, err := parseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	type answer struct {
		cos Cosignature
		err *WitnessError
	}
	answers := make([]answer, len(c.witnesses))
	var wg sync.WaitGroup
	for i, w := range c.witnesses {
		wg.Go(func() {
			cos, err := c.submitOne(ctx, w, cp, text, signed, proofs)
			answers[i] = answer{cos, err}
		})
	}
	wg.Wait()
	res := &Result{Checkpoint: cp}
	var sigs []note.Signature
	var names []string
	for _, a := range answers {
		if a.err != nil {
			res.Failures = append(res.Failures, a.err)
			c.log.Warn("tlog-witness did not cosign", "witness", a.err.Witness, "origin", cp.Origin, "size", cp.Size,
				"status", a.err.Status, "error", a.err.Err)
			continue
		}
		res.Cosignatures = append(res.Cosignatures, a.cos)
		sigs = append(sigs, a.cos.Signature)
		names = append(names, a.cos.Witness)
	}
	res.Cosigned, err = MergeCosignatures(signed, sigs...)
	if err != nil {
		return nil, err
	}
	need := c.policy.Need()
	res.Witnessed = len(res.Cosignatures) >= need
	if !res.Witnessed {
		return res, &QuorumError{Origin: cp.Origin, Size: cp.Size, Have: len(res.Cosignatures), Need: need, Witnessed: names}
	}
	return res, nil
}

// CosignFunc adapts Submit to a checkpointer hook (the shape of
// tlog.CheckpointerConfig.Cosign): it returns the note with every verified
// cosignature merged in; when the policy is not met it returns that
// partially cosigned note together with the *QuorumError.
func (c *Client) CosignFunc(proofs ProofSource) func(ctx context.Context, signed []byte) ([]byte, error) {
	return func(ctx context.Context, signed []byte) ([]byte, error) {
		res, err := c.Submit(ctx, signed, proofs)
		if res == nil {
			return nil, err
		}
		return res.Cosigned, err
	}
}

// submitOne runs the add-checkpoint exchange with one witness.
func (c *Client) submitOne(ctx context.Context, w *witness, cp Checkpoint, text string, signed []byte, proofs ProofSource) (Cosignature, *WitnessError) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fail := func(status int, err error) (Cosignature, *WitnessError) {
		return Cosignature{}, &WitnessError{Witness: w.verifier.Name(), URL: w.url, Status: status, Err: err}
	}
	old := max(w.known, 0)
	for attempt := 0; ; attempt++ {
		if old > cp.Size {
			return fail(0, fmt.Errorf("witness has cosigned size %d, larger than checkpoint size %d: it saw a larger tree of %q", old, cp.Size, cp.Origin))
		}
		req := AddCheckpointRequest{OldSize: old, Checkpoint: signed}
		if old > 0 && old < cp.Size {
			p, err := proofs.ConsistencyProof(ctx, old, cp.Size)
			if err != nil {
				return fail(0, fmt.Errorf("consistency proof %d → %d: %w", old, cp.Size, err))
			}
			req.Proof = p
		}
		status, ctype, body, err := c.post(ctx, w.url+AddCheckpointPath, req.Marshal())
		if err != nil {
			return fail(0, err)
		}
		switch status {
		case http.StatusOK:
			cos, err := c.verifyAnswer(w, text, body)
			if err != nil {
				return fail(status, err)
			}
			w.known = cp.Size
			return cos, nil
		case http.StatusConflict:
			mt, _, _ := mime.ParseMediaType(ctype)
			if mt != SizeContentType {
				return fail(status, fmt.Errorf("409 answer has Content-Type %q, want %s", ctype, SizeContentType))
			}
			size, err := ParseSizeBody(body)
			if err != nil {
				return fail(status, err)
			}
			w.known = size
			if attempt+1 >= c.maxConflicts {
				return fail(status, fmt.Errorf("still in conflict after %d attempts (witness size %d)", attempt+1, size))
			}
			c.log.Debug("tlog-witness conflict, retrying from its size", "witness", w.verifier.Name(), "old", old, "witness_size", size)
			old = size
		default:
			return fail(status, fmt.Errorf("%s", bytes.TrimSpace(body)))
		}
	}
}

// post sends one request and reads a bounded answer.
func (c *Client) post(ctx context.Context, url string, body []byte) (int, string, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, fmt.Errorf("build request: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return 0, "", nil, fmt.Errorf("read answer: %w", err)
	}
	if len(out) > MaxResponseBytes {
		return 0, "", nil, fmt.Errorf("answer larger than %d bytes", MaxResponseBytes)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), out, nil
}

// verifyAnswer checks a 200 answer: signature lines, one of which is a
// valid, non-future cosignature by the witness's key over text.
func (c *Client) verifyAnswer(w *witness, text string, body []byte) (Cosignature, error) {
	if _, err := ParseSignatureLines(string(body)); err != nil {
		return Cosignature{}, err
	}
	if len(body) == 0 {
		return Cosignature{}, errors.New("200 answer has no signature lines")
	}
	n, err := note.Open(append([]byte(text+"\n"), body...), note.VerifierList(w.verifier))
	if err != nil {
		return Cosignature{}, fmt.Errorf("cosignature does not verify with %s: %w", w.verifier.Name(), err)
	}
	s := n.Sigs[0]
	t, err := CosignatureTime(s)
	if err != nil {
		return Cosignature{}, err
	}
	if now := c.now(); t.After(now.Add(c.skew)) {
		return Cosignature{}, &FutureCosignatureError{Witness: s.Name, Time: t, Now: now}
	}
	return Cosignature{Witness: s.Name, Time: t, Signature: s}, nil
}
