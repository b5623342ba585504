package tlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FileCheckpoints is a CheckpointStore in one file, replaced atomically
// (written beside, synced, renamed, directory synced). It is what a
// checkpointer uses when the tree lives in another process (the signer
// worker).
type FileCheckpoints struct {
	Path string
}

// Load returns the stored note, or nil if the file does not exist.
func (f FileCheckpoints) Load(context.Context) ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tlog: read checkpoint file: %w", err)
	}
	return b, nil
}

// Save replaces the file durably.
func (f FileCheckpoints) Save(_ context.Context, signed []byte) error {
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, filepath.Base(f.Path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tlog: checkpoint file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(signed)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path)
	}
	if err != nil {
		return fmt.Errorf("tlog: write checkpoint file %s: %w", f.Path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
