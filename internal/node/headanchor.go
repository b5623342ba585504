package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witnessd"
)

// Settings that re-establish a missing head file (issue 9 item 9).
const (
	// FlagResetHeadFromWitness names the witness whose heads re-establish
	// a missing head file.
	FlagResetHeadFromWitness = "--reset-head-from-witness"
	// EnvResetHeadFromWitness is its environment variable.
	EnvResetHeadFromWitness = "SECURELOG_RESET_HEAD_FROM_WITNESS"
	// FlagAcceptMissingHead accepts the store as it is when the head file
	// is missing.
	FlagAcceptMissingHead = "--accept-missing-head"
	// LocalWitness is the value of FlagResetHeadFromWitness that reads the
	// heads of up's local witness (DATA/witness) instead of asking a URL.
	LocalWitness = "local"
)

// HeadAnchor says how a log whose head file is missing while its store has
// signed segments re-establishes it (issue 9 item 9). Without either
// setting such streams halt (no appends, no signing, /healthz not ok, an
// alert) until the operator chooses.
type HeadAnchor struct {
	// WitnessURL is a witness (http(s)://HOST[:PORT]) whose heads
	// re-establish the head file once the store is checked to hold each
	// witnessed checkpoint (a rolled-back store halts as a rollback). Each
	// head's log signature is verified with the trust file. For up,
	// LocalWitness reads its local witness's heads.
	WitnessURL string
	// Accept re-establishes it from the store's newest signed checkpoints
	// (with a warning): the operator's decision that the store is not an
	// older copy.
	Accept bool
	// heads are witness heads read from up's local witness store.
	heads map[string]wire.WitnessRow
}

// set reports whether h asks to re-establish a missing head file.
func (h HeadAnchor) set() bool {
	return h.Accept || h.heads != nil || strings.TrimSpace(h.WitnessURL) != ""
}

// Apply sets the securelog options of h (Options.WitnessHead and
// AcceptMissingHead).
func (h HeadAnchor) Apply(o *securelog.Options) error {
	o.AcceptMissingHead = h.Accept
	switch u := strings.TrimSpace(h.WitnessURL); {
	case h.heads != nil:
		heads := h.heads
		o.WitnessHead = func(_ context.Context, stream string) (securelog.WitnessHead, bool, error) {
			r, ok := heads[stream]
			if !ok {
				return securelog.WitnessHead{}, false, nil
			}
			return witnessHeadOf(r)
		}
	case u == "":
	case u == LocalWitness:
		return &SettingError{Flag: FlagResetHeadFromWitness, Env: EnvResetHeadFromWitness, Value: u,
			Msg: "\"local\" names up's local witness; other commands take the witness's URL http(s)://HOST[:PORT]"}
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		o.WitnessHead = httpWitnessHead(u)
	default:
		return &SettingError{Flag: FlagResetHeadFromWitness, Env: EnvResetHeadFromWitness, Value: u,
			Msg: "want the witness's URL http(s)://HOST[:PORT]"}
	}
	return nil
}

// witnessHeadOf turns a witness log row into the head the log checks.
func witnessHeadOf(r wire.WitnessRow) (securelog.WitnessHead, bool, error) {
	h, err := wire.ParseHex(r.CheckpointHashHex)
	if err != nil || len(h) != wire.HashLen {
		return securelog.WitnessHead{}, false, fmt.Errorf("witness head of stream %q: checkpoint hash %q is not 32 hex bytes", r.StreamID, r.CheckpointHashHex)
	}
	sig, err := wire.ParseHex(r.SignatureHex)
	if err != nil || len(sig) == 0 || r.SignerIdentity == "" {
		return securelog.WitnessHead{}, false, fmt.Errorf("witness head of stream %q: no log signature (signature_hex %q, signer_identity %q)",
			r.StreamID, r.SignatureHex, r.SignerIdentity)
	}
	return securelog.WitnessHead{SegmentID: r.SegmentID, SeqEnd: r.SeqEnd, CheckpointHash: h, SignerIdentity: r.SignerIdentity, Signature: sig}, true, nil
}

// httpWitnessHead asks a witness's HTTP API for a stream's head
// (witnessd.HeadPath; 404 = the witness has none).
func httpWitnessHead(base string) func(ctx context.Context, stream string) (securelog.WitnessHead, bool, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	return func(ctx context.Context, stream string) (securelog.WitnessHead, bool, error) {
		url := strings.TrimSuffix(base, "/") + witnessd.HeadPath + neturl.PathEscape(stream)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return securelog.WitnessHead{}, false, fmt.Errorf("witness head %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return securelog.WitnessHead{}, false, fmt.Errorf("witness head (%s): %w", FlagResetHeadFromWitness, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return securelog.WitnessHead{}, false, fmt.Errorf("witness head %s: %w", url, err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound:
			return securelog.WitnessHead{}, false, nil
		default:
			return securelog.WitnessHead{}, false, fmt.Errorf("witness head %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		var r wire.WitnessRow
		if err := json.Unmarshal(body, &r); err != nil {
			return securelog.WitnessHead{}, false, fmt.Errorf("witness head %s: %w", url, err)
		}
		if r.StreamID != stream {
			return securelog.WitnessHead{}, false, fmt.Errorf("witness head %s: answered for stream %q", url, r.StreamID)
		}
		return witnessHeadOf(r)
	}
}

// localWitnessHeads reads the newest witnessed checkpoint of every stream
// from up's local witness store (before the witness runs). It returns nil
// when the head file exists (nothing to re-establish).
func localWitnessHeads(ctx context.Context, dataDir, headFile string) (map[string]wire.WitnessRow, error) {
	if _, err := os.Stat(headFile); !errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	path := filepath.Join(dataDir, "witness", "store")
	heads := map[string]wire.WitnessRow{}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return heads, nil
	}
	st, err := OpenStore(ctx, StoreConfig{Spec: "pebble:" + path})
	if err != nil {
		return nil, fmt.Errorf("local witness store (%s local): %w", FlagResetHeadFromWitness, err)
	}
	defer st.Close()
	ids, err := st.WitnessStreamIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("local witness store: %w", err)
	}
	for _, id := range ids {
		r, ok, err := st.WitnessLatest(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("local witness store: head of %q: %w", id, err)
		}
		if ok {
			heads[id] = r
		}
	}
	return heads, nil
}
