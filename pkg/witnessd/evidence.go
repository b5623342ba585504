package witnessd

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Alert kinds of refused submissions that are evidence against the log
// (besides AlertEquivocation).
const (
	// AlertFork: a validly signed checkpoint at a segment id other than the
	// witnessed head's that provably conflicts with it — it restarts the
	// chain, re-covers seqnos the witnessed checkpoints cover, or descends
	// from a signed checkpoint that is not on the witnessed chain.
	AlertFork = "fork"
	// AlertUnlinked: a validly signed checkpoint at a newer segment id that
	// the witness cannot link to its head. Either the log forked, or the
	// witness missed checkpoints and the submitter did not include them (a
	// signer that resubmits with the intermediate checkpoints resolves it).
	AlertUnlinked = "unlinked"
)

// MaxEvidenceInMemory bounds the evidence a Server without an evidence
// directory keeps (the oldest is dropped first).
const MaxEvidenceInMemory = 256

// Evidence is a refused, validly signed submission that conflicts with the
// witnessed head, as the witness keeps it: in Config.EvidenceDir as
// <checkpoint hash hex>.json (0600, written once), else in memory.
type Evidence struct {
	// Kind is the alert kind (AlertEquivocation, AlertFork, AlertUnlinked).
	Kind string `json:"kind"`
	// Status and Reason are those of the receipt.
	Status string `json:"status"`
	Reason string `json:"reason"`
	// ReceivedAt is when the witness received the submission (RFC 3339).
	ReceivedAt string `json:"received_at_rfc3339"`
	// Head is the witnessed head the submission conflicts with.
	Head *wire.WitnessRow `json:"witnessed_head"`
	// Submission is the submission as received, signature included.
	Submission witness.Submission `json:"submission"`
}

// evidenceKeeper stores evidence in a directory or, without one, in memory.
type evidenceKeeper struct {
	dir string
	mu  sync.Mutex
	mem []Evidence
}

// keep stores ev once per checkpoint hash. It reports whether ev was new.
func (k *evidenceKeeper) keep(ev Evidence, hash []byte) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dir == "" {
		for _, e := range k.mem {
			if e.Submission.CheckpointHashHex == ev.Submission.CheckpointHashHex && len(e.Submission.Intermediate) == len(ev.Submission.Intermediate) {
				return false, nil
			}
		}
		if len(k.mem) == MaxEvidenceInMemory {
			k.mem = k.mem[1:]
		}
		k.mem = append(k.mem, ev)
		return true, nil
	}
	path := filepath.Join(k.dir, hex.EncodeToString(hash)+".json")
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("evidence %s: %w", path, err)
	}
	data, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return false, fmt.Errorf("encode evidence: %w", err)
	}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return false, fmt.Errorf("evidence directory: %w", err)
	}
	return true, writeFileSync(path, append(data, '\n'))
}

// all returns the evidence kept (from the directory, or in memory).
func (k *evidenceKeeper) all() ([]Evidence, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dir == "" {
		return append([]Evidence(nil), k.mem...), nil
	}
	files, err := filepath.Glob(filepath.Join(k.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := make([]Evidence, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("evidence: %w", err)
		}
		var ev Evidence
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("evidence %s: %w", f, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// writeFileSync writes data to path atomically (temp file, fsync, rename)
// with mode 0600.
func writeFileSync(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".evidence-*")
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("evidence %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Evidence returns the evidence the witness kept: refused, validly signed
// submissions that conflict with a witnessed head.
func (s *Server) Evidence() ([]Evidence, error) { return s.evidence.all() }

// keepEvidence stores a refused submission that is evidence and raises its
// alert. A failure to store is logged; the alert is raised regardless.
func (s *Server) keepEvidence(sub witness.Submission, d Decision, receivedAt string) {
	ev := Evidence{Kind: d.Evidence, Status: d.Status, Reason: d.Reason, ReceivedAt: receivedAt, Head: d.Head, Submission: sub}
	if _, err := s.evidence.keep(ev, d.Hash); err != nil {
		s.log.Error("witness: could not keep evidence", "stream", sub.StreamID, "segment_id", sub.SegmentID, "error", err)
	}
	s.raise(Alert{Stream: sub.StreamID, SegmentID: sub.SegmentID, Kind: d.Evidence, Detail: d.Reason})
}
