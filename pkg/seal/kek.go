package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/securelog/securelog/pkg/secretfile"
)

// ParseKEK decodes key-file contents: either exactly 32 raw bytes, or 64 hex
// characters optionally followed by one "\n" or "\r\n". The error names the
// length that was found.
func ParseKEK(data []byte) ([]byte, error) {
	if len(data) == KEKSize {
		// 32 bytes that happen to be hex digits are still raw key bytes; a hex
		// file is always 64+ characters long.
		return bytes.Clone(data), nil
	}
	s := data
	switch {
	case bytes.HasSuffix(s, []byte("\r\n")):
		s = s[:len(s)-2]
	case bytes.HasSuffix(s, []byte("\n")):
		s = s[:len(s)-1]
	}
	if len(s) != 2*KEKSize {
		return nil, fmt.Errorf("KEK must be %d raw bytes or %d hex characters, got %d bytes", KEKSize, 2*KEKSize, len(data))
	}
	k := make([]byte, KEKSize)
	if _, err := hex.Decode(k, s); err != nil {
		return nil, fmt.Errorf("KEK is 64 characters but not hex: %w", err)
	}
	return k, nil
}

// LoadKEK reads a master key file (see ParseKEK for the accepted forms). The
// error names the file and, for a bad key, its length. A file other users
// can read is refused (a *secretfile.ModeError naming the fix, chmod 600);
// see LoadKEKWith.
func LoadKEK(path string) ([]byte, error) {
	return LoadKEKWith(path, secretfile.Policy{})
}

// LoadKEKWith is LoadKEK with the policy for KEK files other users can read.
func LoadKEKWith(path string, p secretfile.Policy) ([]byte, error) {
	data, err := secretfile.Read("KEK file", path, p)
	if err != nil {
		return nil, err
	}
	k, err := ParseKEK(data)
	if err != nil {
		return nil, fmt.Errorf("KEK file %s: %w", path, err)
	}
	return k, nil
}

// GenerateKEKFile writes a fresh random 32-byte master key to path as 64
// lowercase hex characters and "\n", with mode 0600. It refuses to overwrite
// an existing file.
func GenerateKEKFile(path string) error {
	k := make([]byte, KEKSize)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("generate KEK: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("KEK file %s already exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("create KEK file: %w", err)
	}
	line := hex.EncodeToString(k) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write KEK file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("sync KEK file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("close KEK file %s: %w", path, err)
	}
	return nil
}
