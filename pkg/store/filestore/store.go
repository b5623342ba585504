// Package filestore is the JSON-lines file backend of store.Store (SPEC §17):
// an append-only file with one operation per line, replayed into memory on
// Init; every read is served from memory.
//
// The file format is exactly §17.1, so files interoperate with the reference
// in both directions. Behaviour fixed relative to the reference (§17.2–17.3,
// DECISIONS 22): every write is fsynced before it returns and only then
// applied to memory (a failed write leaves memory unchanged and the file
// truncated back); a torn final line — no trailing newline and unparsable,
// what a crash mid-write leaves — is cut off with a warning instead of
// making the file unopenable, while a corrupt complete line is still fatal;
// the seeded "default" stream gets an RFC 3339 created_at; a seqno, segment
// id or witness id that appears twice fails replay; the file is locked
// against a second writer.
package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// FileMode is the permission of a log file Init creates.
const FileMode fs.FileMode = 0o600

const (
	defaultStream            = "default"
	defaultStreamTier        = "public"
	defaultStreamDescription = "Default stream created automatically at init."
)

// logFile is what the store needs of the open log file (an *os.File;
// tests substitute failing files).
type logFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Store is the JSON-lines file store. The zero value is not usable; call
// New, then Init.
type Store struct {
	mu     sync.RWMutex
	path   string
	f      logFile // nil until Init succeeded and after Close
	unlock func() error
	size   int64 // bytes of complete lines in the file
	m      *model
	// reserved holds the segment-id reservations (reserve.go).
	reserved map[string]uint64
	// failed is set when a write failed and the file could not be restored
	// to its last complete line; every later write returns it.
	failed error
	// now is the clock used for the default stream's created_at.
	now func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an uninitialised file store.
func New() *Store { return &Store{now: time.Now} }

// Init replays the log file at path (config) into memory, creating it if
// missing, and seeds the "default" stream if absent.
func (s *Store) Init(_ context.Context, config string) error {
	if config == "" {
		return errors.New("file store: init config is empty; pass a log file path")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		return fmt.Errorf("file store: already initialized with %s", s.path)
	}
	f, created, err := openLogFile(config)
	if err != nil {
		return err
	}
	unlock, err := lockFile(f)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("file store: lock %s: %w (is another process using it?)", config, err)
	}
	fail := func(err error) error {
		_ = unlock()
		_ = f.Close()
		return err
	}
	data, err := readAll(f)
	if err != nil {
		return fail(fmt.Errorf("read %s: %w", config, err))
	}
	m, keep, err := replay(config, data)
	if err != nil {
		return fail(err)
	}
	reserved, err := loadReservations(config, m)
	if err != nil {
		return fail(err)
	}
	if keep < int64(len(data)) {
		if err := f.Truncate(keep); err != nil {
			return fail(fmt.Errorf("file store: cut torn last line of %s: %w", config, err))
		}
	}
	if keep > 0 && data[keep-1] != '\n' {
		// The last line is complete but lacks its newline: add it so the
		// next line starts on its own.
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return fail(fmt.Errorf("file store: terminate last line of %s: %w", config, err))
		}
		keep++
	}
	if keep != int64(len(data)) || created {
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("file store: sync %s: %w", config, err))
		}
	}
	if created {
		if err := syncDir(filepath.Dir(config)); err != nil {
			return fail(err)
		}
	}
	s.path, s.f, s.unlock, s.size, s.m, s.failed, s.reserved = config, f, unlock, keep, m, nil, reserved
	if _, ok := m.streamIdx[defaultStream]; !ok {
		desc := defaultStreamDescription
		seed := op{kind: kindStreamUpsert, stream: wire.StreamRow{
			Name: defaultStream, Tier: defaultStreamTier, Description: &desc, CreatedAt: wire.FormatTime(s.now()),
		}}
		if err := s.commitLocked(seed); err != nil {
			s.path, s.f, s.unlock, s.size, s.m, s.failed = "", nil, nil, 0, nil, nil
			return fail(fmt.Errorf("file store: seed default stream in %s: %w", config, err))
		}
	}
	return nil
}

// openLogFile opens (or creates) the log for reading and appending.
func openLogFile(path string) (f *os.File, created bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, FileMode)
		created = true
	}
	if err != nil {
		return nil, false, fmt.Errorf("file store: open %s: %w", path, err)
	}
	return f, created, nil
}

func readAll(f *os.File) ([]byte, error) {
	var buf bytes.Buffer
	if fi, err := f.Stat(); err == nil {
		buf.Grow(int(fi.Size()))
	}
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file store: sync directory %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file store: sync directory %s: %w", dir, err)
	}
	return nil
}

// replay rebuilds the model from the file contents (SPEC §17.3) and returns
// how many leading bytes to keep: all of them, or up to the last newline if
// the final line is torn.
func replay(path string, data []byte) (*model, int64, error) {
	m := newModel()
	lineNo := 0
	for off := 0; off < len(data); {
		lineNo++
		end := bytes.IndexByte(data[off:], '\n')
		final := end < 0
		if final {
			end = len(data)
		} else {
			end += off
		}
		line := bytes.TrimSpace(data[off:end])
		if len(line) == 0 {
			if final {
				return m, int64(off), nil // trailing blanks without newline: drop
			}
			off = end + 1
			continue
		}
		o, err := decodeLine(line)
		if err != nil && final {
			slog.Warn("file store: cutting off torn last line (crash mid-write?)",
				"path", path, "line", lineNo, "bytes", end-off, "error", err.Error())
			return m, int64(off), nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("corrupt log at line %d: %w", lineNo, err)
		}
		if err := m.apply(o); err != nil {
			return nil, 0, fmt.Errorf("corrupt log at line %d: %w", lineNo, err)
		}
		off = end + 1
	}
	return m, int64(len(data)), nil
}

// Close closes the file. Operations after Close fail with
// store.ErrNotInitialized.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	errUnlock := s.unlock()
	err := s.f.Close()
	s.f, s.m, s.unlock = nil, nil, nil
	if err = errors.Join(err, errUnlock); err != nil {
		return fmt.Errorf("file store: close %s: %w", s.path, err)
	}
	return nil
}

// commit validates ops against the model, appends their lines in one write,
// fsyncs and then applies them. On a write or sync failure the file is cut
// back to its last complete line and memory is unchanged.
func (s *Store) commit(ops ...op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return store.ErrNotInitialized
	}
	return s.commitLocked(ops...)
}

func (s *Store) commitLocked(ops ...op) error {
	if s.failed != nil {
		return s.failed
	}
	var buf []byte
	for _, o := range ops {
		if err := s.m.check(o); err != nil {
			return err
		}
		line, err := o.encode()
		if err != nil {
			return err
		}
		buf = append(buf, line...)
	}
	if len(buf) == 0 {
		return nil
	}
	n, err := s.f.Write(buf)
	if err == nil && n != len(buf) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(buf))
	}
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		err = fmt.Errorf("file store: append to %s: %w", s.path, err)
		if terr := s.restore(); terr != nil {
			s.failed = fmt.Errorf("file store: %s is unusable until reopened: an append failed and the file could not be cut back: %w", s.path, errors.Join(err, terr))
		}
		return err
	}
	s.size += int64(len(buf))
	for _, o := range ops {
		if err := s.m.apply(o); err != nil {
			// check guarantees apply succeeds; reaching this is a bug.
			panic(fmt.Sprintf("file store: apply %s after check: %v", o.kind, err))
		}
	}
	return nil
}

// restore cuts the file back to its last complete line after a failed append.
func (s *Store) restore() error {
	if err := s.f.Truncate(s.size); err != nil {
		return err
	}
	return s.f.Sync()
}

// read runs fn on the model under the read lock.
func (s *Store) read(fn func(m *model)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.m == nil {
		return store.ErrNotInitialized
	}
	fn(s.m)
	return nil
}
