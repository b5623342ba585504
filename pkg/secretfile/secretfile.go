// Package secretfile reads and creates files that hold secrets — private
// keys, KEKs, bearer tokens, PINs — and refuses secret files other users can
// access (issue 9 item 7): a secret readable by the group or by everyone is
// an error naming the file and the fix (chmod 600), unless the caller's
// Policy explicitly allows it, in which case it is used with a warning.
//
// The mode is checked on the opened file (fstat), so a file swapped between
// the check and the read is still checked. On Windows, where Unix modes do
// not describe access, no check is made.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
)

// Mode is the mode secret files are created with.
const Mode fs.FileMode = 0o600

// othersMask are the permission bits that give the group or other users
// any access.
const othersMask fs.FileMode = 0o077

// Policy says what to do with a secret file that other users can access.
// The zero Policy refuses it.
type Policy struct {
	// AllowReadable uses such a file with a warning instead of refusing it.
	AllowReadable bool
	// Hint, if set, replaces the default way to allow it in the error
	// ("or allow readable secret files explicitly"), e.g. a CLI flag.
	Hint string
	// Logger receives the warning (slog.Default() if nil).
	Logger *slog.Logger
}

// ModeError is the refusal of a secret file other users can access.
type ModeError struct {
	// What describes the file ("KEK file", "key file", …).
	What string
	// Path is the file.
	Path string
	// Mode is its permission bits.
	Mode fs.FileMode
	// Hint says how to allow it anyway.
	Hint string
}

func (e *ModeError) Error() string {
	hint := e.Hint
	if hint == "" {
		hint = "or allow readable secret files explicitly"
	}
	return fmt.Sprintf("%s %s is accessible to other users (mode %04o): run 'chmod 600 %s' (%s)", e.What, e.Path, e.Mode.Perm(), e.Path, hint)
}

// Check applies p to a secret file of mode mode: nil if only its owner can
// access it; with AllowReadable a warning and nil; else a *ModeError.
func Check(what, path string, mode fs.FileMode, p Policy) error {
	if runtime.GOOS == "windows" || mode.Perm()&othersMask == 0 {
		return nil
	}
	if p.AllowReadable {
		log := p.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("secret file is accessible to other users; using it because readable secrets are allowed",
			"what", what, "file", path, "mode", fmt.Sprintf("%04o", mode.Perm()))
		return nil
	}
	return &ModeError{What: what, Path: path, Mode: mode.Perm(), Hint: p.Hint}
}

// Read reads the secret file path (described as what, e.g. "KEK file")
// after checking its mode with Check. Errors name the file.
func Read(what, path string, p Policy) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if err := Check(what, path, st.Mode(), p); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", what, path, err)
	}
	return b, nil
}

// WriteNew creates path with data and mode 0600 (whatever the umask), and
// fails with an error matching fs.ErrExist if it exists. The data is
// written to a synced temporary file in the same directory that is then
// hard-linked to path, so path never exists half-written.
func WriteNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-secret-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(Mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: persist the new directory entry
		d.Close()
	}
	return nil
}

// IsModeError reports whether err is (or wraps) a *ModeError.
func IsModeError(err error) bool {
	var me *ModeError
	return errors.As(err, &me)
}
