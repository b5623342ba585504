package stackcheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/securelog/securelog/pkg/keystore/pkcs11"
)

// DefaultSoftHSMModule is where Debian's softhsm2 package installs the
// SoftHSM2 PKCS#11 module.
const DefaultSoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSM describes how to make a throwaway SoftHSM2 token.
type SoftHSM struct {
	// Util is the path of softhsm2-util.
	Util string
	// Module is the path of the SoftHSM2 PKCS#11 module
	// (DefaultSoftHSMModule if empty).
	Module string
	// Dir receives the token directory and the configuration file; it is
	// created if missing. The caller removes it.
	Dir string
	// Label is the token label (default "securelog-stackcheck").
	Label string
}

// ErrSoftHSMMissing is returned (wrapped) by ProvisionSoftHSM when the
// utility or the module does not exist.
var ErrSoftHSMMissing = errors.New("softhsm2 is not installed")

// SoftHSMToken is a provisioned token.
type SoftHSMToken struct {
	// Config opens the token with pkcs11.Open.
	Config pkcs11.Config
	// ConfPath is the SoftHSM2 configuration file. The SoftHSM2 module
	// reads the SOFTHSM2_CONF environment variable when it is initialised,
	// so the caller must set SOFTHSM2_CONF=ConfPath in its own process
	// before pkcs11.Open.
	ConfPath string
}

// ProvisionSoftHSM initialises a new SoftHSM2 token in s.Dir with a random
// user PIN: it writes a configuration whose token directory is inside Dir
// and runs `softhsm2-util --init-token --free` with SOFTHSM2_CONF pointing at
// it (the child gets only that variable). It returns ErrSoftHSMMissing
// (wrapped) when softhsm2 is not installed.
func ProvisionSoftHSM(ctx context.Context, s SoftHSM) (SoftHSMToken, error) {
	if s.Module == "" {
		s.Module = DefaultSoftHSMModule
	}
	if s.Label == "" {
		s.Label = "securelog-stackcheck"
	}
	if s.Util == "" {
		return SoftHSMToken{}, fmt.Errorf("softhsm2-util not found: %w", ErrSoftHSMMissing)
	}
	for _, p := range []string{s.Util, s.Module} {
		if _, err := os.Stat(p); err != nil {
			return SoftHSMToken{}, fmt.Errorf("%s: %w", p, ErrSoftHSMMissing)
		}
	}
	if s.Dir == "" {
		return SoftHSMToken{}, errors.New("softhsm: no directory for the token")
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return SoftHSMToken{}, fmt.Errorf("softhsm: directory %q: %w", s.Dir, err)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return SoftHSMToken{}, fmt.Errorf("softhsm: %w", err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	confText := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		return SoftHSMToken{}, fmt.Errorf("softhsm: %w", err)
	}
	pin, soPIN := randomPIN(), randomPIN()
	cmd := exec.CommandContext(ctx, s.Util, "--init-token", "--free", "--label", s.Label, "--pin", pin, "--so-pin", soPIN)
	cmd.Env = []string{"SOFTHSM2_CONF=" + conf}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return SoftHSMToken{}, fmt.Errorf("softhsm: %s --init-token: %w: %s", s.Util, err, strings.TrimSpace(out.String()))
	}
	return SoftHSMToken{Config: pkcs11.Config{Module: s.Module, TokenLabel: s.Label, PIN: pin}, ConfPath: conf}, nil
}

func randomPIN() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
