package bundletest

// Large synthetic bundles for tests and benchmarks: a signed stream
// generated on the fly, written with bundle.Write, without a store.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/wire"
)

// Source is an audit.Source that synthesises a valid signed stream on
// the fly: n entries in segments of segSize (the last segSize/2 entries
// stay open), each segment signed with an ed25519 key. Only the current
// segment's leaves are held; segment rows are built as Entries runs (which
// is what bundle.Write calls first).
type Source struct {
	n, segSize uint64
	priv       ed25519.PrivateKey
	segs       []wire.SegmentRow
	members    map[uint64][2]uint64 // id → [start, end]
}

// Stream is the generated stream's id.
const Stream = "big"

// New returns a Source of n entries in segments of segSize and the trust
// entry of its signing key.
func New(n, segSize uint64) (*Source, checkpoint.TrustEntry) {
	seed := make([]byte, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	return &Source{n: n, segSize: segSize, priv: priv, members: map[uint64][2]uint64{}},
		checkpoint.TrustEntry{Identity: "gen", Algorithm: keystore.Ed25519, PublicKey: priv.Public().(ed25519.PublicKey)}
}

func (g *Source) Entries(ctx context.Context, stream string, fn func(wire.EntryRow) error) error {
	g.segs, g.members = nil, map[uint64][2]uint64{}
	prev, prevCk := wire.ZeroHash, wire.ZeroHash
	var leaves [][]byte
	start := uint64(1)
	closedUpTo := g.n - g.segSize/2
	payload := make([]byte, 24)
	for s := uint64(1); s <= g.n; s++ {
		binary.BigEndian.PutUint64(payload, s)
		r := wire.EntryRow{Seqno: s, StreamID: Stream, SessionID: "sess", BootID: "boot", Timestamp: "2026-04-10T00:00:00.000000Z",
			EventType: "ev", Severity: wire.Info, Producer: "gen", PayloadEncoding: wire.EncoderName, Payload: payload, PrevEntryHash: prev}
		r.EntryHash = chain.RowHash(r)
		if err := fn(r); err != nil {
			return err
		}
		prev = r.EntryHash
		if s > closedUpTo {
			continue
		}
		leaves = append(leaves, r.EntryHash)
		if uint64(len(leaves)) == g.segSize || s == closedUpTo {
			id := uint64(len(g.segs) + 1)
			seg := wire.SegmentRow{SegmentID: id, StreamID: Stream, SeqStart: start, SeqEnd: s, MerkleRoot: merkle.Root(leaves),
				LastEntryHash: r.EntryHash, PrevCheckpointHash: prevCk, ClosedAt: "2026-04-10T00:00:01.000000Z"}
			h := checkpoint.Hash(wire.CheckpointFields{Version: wire.CheckpointVersion, StreamID: Stream, SegmentID: id,
				SeqStart: start, SeqEnd: s, MerkleRoot: seg.MerkleRoot, LastEntryHash: seg.LastEntryHash, PrevCheckpointHash: prevCk,
				BootID: "boot", SessionID: "sess", PolicyHash: wire.ZeroHash, Timestamp: seg.ClosedAt})
			seg.Signature = ed25519.Sign(g.priv, h)
			signer := "gen"
			seg.SignerIdentity = &signer
			g.segs = append(g.segs, seg)
			g.members[id] = [2]uint64{start, s}
			prevCk, leaves, start = h, leaves[:0], s+1
		}
	}
	return nil
}

func (g *Source) Segments(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	return g.segs, nil
}

func (g *Source) SegmentSeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	m, ok := g.members[id]
	if !ok {
		return nil, fmt.Errorf("no segment %d", id)
	}
	out := make([]uint64, 0, m[1]-m[0]+1)
	for s := m[0]; s <= m[1]; s++ {
		out = append(out, s)
	}
	return out, nil
}

// WriteFile writes a synthetic bundle of n entries in segments of segSize
// to dir/big.json and returns its path and size.
func WriteFile(dir string, n, segSize uint64) (string, int64, error) {
	g, te := New(n, segSize)
	path := filepath.Join(dir, "big.json")
	f, err := os.Create(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := bundle.Write(context.Background(), w, g, Stream, []checkpoint.TrustEntry{te}, nil); err != nil {
		return "", 0, fmt.Errorf("write bundle: %w", err)
	}
	if err := w.Flush(); err != nil {
		return "", 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	return path, fi.Size(), f.Close()
}
