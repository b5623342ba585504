package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/securelog/securelog/pkg/store"
)

// Segment-id reservations (store.SegmentReserver) live beside the log, in
// <path>.reservations (JSON object stream → id, 0600), so the log file keeps
// exactly the line kinds of SPEC §17.1. The file is replaced atomically
// (temporary file, fsync, rename, directory fsync) under the store's lock.
// A reservation whose id is a stored segment has ended: a crash between a
// segment's line and the rewrite of this file leaves such a stale record,
// which loading drops.

var _ store.SegmentReserver = (*Store)(nil)

// reservationsPath is the side file of the log at path.
func reservationsPath(path string) string { return path + ".reservations" }

// loadReservations reads the side file of the log at path; a missing file
// holds none.
func loadReservations(path string, m *model) (map[string]uint64, error) {
	out := map[string]uint64{}
	b, err := os.ReadFile(reservationsPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file store: read segment reservations: %w", err)
	}
	var raw map[string]uint64
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("file store: segment reservations %s: %w", reservationsPath(path), err)
	}
	for stream, id := range raw {
		if _, ended := m.segments[id]; !ended && id != 0 {
			out[stream] = id
		}
	}
	return out, nil
}

// saveReservations replaces the side file with res.
func (s *Store) saveReservations(res map[string]uint64) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	dst := reservationsPath(s.path)
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, FileMode)
	if err != nil {
		return fmt.Errorf("file store: write segment reservations: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("file store: write segment reservations: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

// nextSegmentID is one above every stored and reserved id; the caller holds s.mu.
func (s *Store) nextSegmentID() (uint64, error) {
	top := s.m.maxSegID
	for _, id := range s.reserved {
		top = max(top, id)
	}
	if top == math.MaxUint64 {
		return 0, fmt.Errorf("file store: segment ids exhausted")
	}
	return top + 1, nil
}

// SegmentReserve returns the stream's reserved segment id, reserving the
// next id if it holds none; the reservation is durable on return.
func (s *Store) SegmentReserve(_ context.Context, stream string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return 0, store.ErrNotInitialized
	}
	if id, ok := s.reserved[stream]; ok {
		return id, nil
	}
	id, err := s.nextSegmentID()
	if err != nil {
		return 0, err
	}
	next := make(map[string]uint64, len(s.reserved)+1)
	for k, v := range s.reserved {
		next[k] = v
	}
	next[stream] = id
	if err := s.saveReservations(next); err != nil {
		return 0, err
	}
	s.reserved = next
	return id, nil
}

// SegmentReservation returns the stream's reserved segment id, if any.
func (s *Store) SegmentReservation(_ context.Context, stream string) (id uint64, ok bool, err error) {
	err = s.read(func(*model) { id, ok = s.reserved[stream] })
	return id, ok, err
}

// endReservation drops the stream's reservation after its segment was
// stored; the caller holds s.mu. A failed rewrite leaves a stale record
// that the next load drops (its id is a stored segment).
func (s *Store) endReservation(stream string) {
	next := make(map[string]uint64, len(s.reserved))
	for k, v := range s.reserved {
		if k != stream {
			next[k] = v
		}
	}
	_ = s.saveReservations(next) // see above: stale records are harmless
	s.reserved = next
}
