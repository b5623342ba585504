package witness

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// HeadStore holds the bytes of one head file. It is the only way the head
// file is written: every writer goes through CompareAndSwap, so concurrent
// writers (several Logs in one process, sign-segment beside a running
// signer) never lose an update or move a head backwards.
type HeadStore interface {
	// Read returns the current contents; a missing file is nil, nil.
	Read() ([]byte, error)
	// CompareAndSwap replaces the contents with new only if they still
	// equal old (nil = file missing); otherwise it returns
	// *HeadConflictError and changes nothing. When it returns nil the new
	// contents are durable.
	CompareAndSwap(old, new []byte) error
}

// HeadConflictError is returned by CompareAndSwap when another writer
// changed the head file since it was read.
type HeadConflictError struct{ Path string }

func (e *HeadConflictError) Error() string {
	return fmt.Sprintf("head file %q changed since it was read", e.Path)
}

// FileHeadStore is the HeadStore of a file path. CompareAndSwap takes an
// exclusive flock(2) on the sibling "<path>.lock" (held across processes),
// re-reads the file, compares, and replaces it atomically: the new bytes go
// to the temporary file of SPEC §10.3 ("x.heads.json.tmp"), which is fsynced
// and renamed over the head file, and then the directory is fsynced so the
// rename survives a crash (the reference skipped this).
type FileHeadStore struct{ Path string }

// Read implements HeadStore.
func (f FileHeadStore) Read() ([]byte, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read head file %q: %w", f.Path, err)
	}
	return data, nil
}

// CompareAndSwap implements HeadStore.
func (f FileHeadStore) CompareAndSwap(old, new []byte) error {
	unlock, err := lockPath(f.Path + ".lock")
	if err != nil {
		return fmt.Errorf("lock head file %q: %w", f.Path, err)
	}
	defer unlock()
	cur, err := f.Read()
	if err != nil {
		return err
	}
	if (cur == nil) != (old == nil) || !bytes.Equal(cur, old) {
		return &HeadConflictError{Path: f.Path}
	}
	return replaceFile(f.Path, new)
}

// replaceFile writes data to path atomically (temporary file, fsync,
// rename, directory fsync). The caller holds the head file's lock, so the
// fixed temporary name is never shared by two writers.
func replaceFile(path string, data []byte) error {
	tmp := tempPath(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write head file %q: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write head file %q: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync head file %q: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close head file %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace head file %q: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync directory of head file %q: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory of head file %q: %w", path, err)
	}
	return nil
}

// tempPath replaces the final extension of path with "json.tmp":
// "x.heads.json" → "x.heads.json.tmp".
func tempPath(path string) string {
	ext := filepath.Ext(path)
	if ext == "" {
		return path + ".json.tmp"
	}
	return strings.TrimSuffix(path, ext) + ".json.tmp"
}

// maxHeadRetries bounds the read/compare/swap loop of UpdateHead; each
// retry means another writer committed in between, so it only runs out
// under a pathological number of concurrent writers.
const maxHeadRetries = 100

// UpdateHead reads the head file from hs, lets update change it, and writes
// it back with CompareAndSwap, retrying from a fresh read when another
// writer got there first. update reports whether it changed anything;
// nothing is written otherwise. UpdateHead reports whether it wrote.
func UpdateHead(hs HeadStore, update func(*HeadFile) (bool, error)) (bool, error) {
	for range maxHeadRetries {
		old, err := hs.Read()
		if err != nil {
			return false, err
		}
		hf := &HeadFile{Version: HeadFileVersion, Records: []HeadRecord{}}
		if old != nil {
			if hf, err = ParseHeadFile(old); err != nil {
				return false, err
			}
		}
		changed, err := update(hf)
		if err != nil || !changed {
			return false, err
		}
		data, err := hf.Marshal()
		if err != nil {
			return false, fmt.Errorf("encode head file: %w", err)
		}
		err = hs.CompareAndSwap(old, data)
		var conflict *HeadConflictError
		if errors.As(err, &conflict) {
			continue
		}
		return err == nil, err
	}
	return false, fmt.Errorf("head file: gave up after %d conflicting concurrent updates", maxHeadRetries)
}

// SaveHeadFile replaces the head file with h unconditionally (under the
// lock, atomically). Writers that advance heads use AdvanceHeadFile.
func SaveHeadFile(path string, h *HeadFile) error {
	data, err := h.Marshal()
	if err != nil {
		return fmt.Errorf("encode head file: %w", err)
	}
	unlock, err := lockPath(path + ".lock")
	if err != nil {
		return fmt.Errorf("lock head file %q: %w", path, err)
	}
	defer unlock()
	return replaceFile(path, data)
}

// AdvanceHeadFile records rec in the head file at path, only forwards
// (DECISIONS 11), with a cross-process compare-and-swap. It reports whether
// the file changed.
func AdvanceHeadFile(path string, rec HeadRecord) (bool, error) {
	return UpdateHead(FileHeadStore{Path: path}, func(hf *HeadFile) (bool, error) { return hf.Advance(rec), nil })
}

// MigrateHeadFile moves a head file from an old location to path (the one
// location rule, PathForStore), so that a data directory written before
// the rule changed keeps its anti-rollback anchor. It does nothing when old
// does not exist; when both exist, path wins and old is left in place.
// It reports whether it moved the file.
func MigrateHeadFile(old, path string) (bool, error) {
	if old == path {
		return false, nil
	}
	if _, err := os.Stat(old); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("head file %q: %w", old, err)
	}
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	unlock, err := lockPath(path + ".lock")
	if err != nil {
		return false, fmt.Errorf("lock head file %q: %w", path, err)
	}
	defer unlock()
	if err := os.Link(old, path); err != nil {
		return false, fmt.Errorf("move head file %q to %q: %w", old, path, err)
	}
	if err := os.Remove(old); err != nil {
		return false, fmt.Errorf("move head file %q to %q: %w", old, path, err)
	}
	return true, nil
}
