//go:build cgo

package pkcs11

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"

	"github.com/securelog/securelog/pkg/keystore"
)

// module is one loaded and initialised PKCS#11 library, shared by every
// Keystore of the process that uses the same path: C_Initialize and the login
// state are per process, not per handle.
type module struct {
	path   string
	ctx    *p11.Ctx
	refs   int
	logins map[uint]*login // by slot id
}

// login records the PIN a slot was logged in with, so that a second Open of
// the same token with another PIN fails instead of riding on the first login.
type login struct {
	pin  [32]byte // SHA-256 of the PIN
	refs int
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*module{}
)

func acquireModule(path string) (*module, error) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m := modules[path]; m != nil {
		m.refs++
		return m, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: module %q", path), Err: err}
	}
	ctx := p11.New(path)
	if ctx == nil {
		return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: cannot load module %q (not a PKCS#11 library?)", path)}
	}
	if err := ctx.Initialize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: C_Initialize of %q", path), Err: err}
	}
	m := &module{path: path, ctx: ctx, refs: 1, logins: map[uint]*login{}}
	modules[path] = m
	return m, nil
}

func releaseModule(m *module) error {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(modules, m.path)
	err := m.ctx.Finalize()
	m.ctx.Destroy()
	if err != nil {
		return &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: C_Finalize of %q", m.path), Err: err}
	}
	return nil
}

// Keystore is an open, logged-in PKCS#11 token. It implements
// keystore.Signer and is safe for concurrent use; operations share a small
// pool of sessions (Config.Sessions).
type Keystore struct {
	mod   *module
	slot  uint
	label string

	pool    chan p11.SessionHandle
	size    int
	closed  atomic.Bool
	closing chan struct{}
	closeMu sync.Mutex

	genMu sync.Mutex // serialises Generate / wrapping-key creation (label uniqueness)
}

var _ keystore.Signer = (*Keystore)(nil)

// Open loads cfg.Module, finds the token whose label is cfg.TokenLabel, logs
// in as user with cfg.PIN and opens the session pool. A wrong PIN gives a
// *keystore.AccessDeniedError; an unknown token or module a
// *keystore.BackendError.
func Open(cfg Config) (*Keystore, error) {
	if cfg.Module == "" || cfg.TokenLabel == "" {
		return nil, fmt.Errorf("pkcs11: Config needs Module and TokenLabel (got module %q, token %q)", cfg.Module, cfg.TokenLabel)
	}
	if cfg.PIN == "" {
		return nil, &keystore.AccessDeniedError{Msg: fmt.Sprintf("pkcs11: no user PIN for token %q", cfg.TokenLabel)}
	}
	size := cfg.Sessions
	if size <= 0 {
		size = DefaultSessions
	}
	mod, err := acquireModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	k := &Keystore{mod: mod, label: cfg.TokenLabel, size: size, pool: make(chan p11.SessionHandle, size), closing: make(chan struct{})}
	if err := k.open(cfg.PIN); err != nil {
		_ = releaseModule(mod)
		return nil, err
	}
	return k, nil
}

func (k *Keystore) open(pin string) error {
	ctx := k.mod.ctx
	slot, err := findSlot(ctx, k.label)
	if err != nil {
		return err
	}
	k.slot = slot
	var opened []p11.SessionHandle
	closeAll := func() {
		for _, sh := range opened {
			_ = ctx.CloseSession(sh)
		}
	}
	for range k.size {
		sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			closeAll()
			return &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: C_OpenSession on token %q", k.label), Err: err}
		}
		opened = append(opened, sh)
	}
	if err := k.login(opened[0], pin); err != nil {
		closeAll()
		return err
	}
	for _, sh := range opened {
		k.pool <- sh
	}
	return nil
}

// login logs the slot in, or checks the PIN against the one this process
// already logged the slot in with (login state is per application).
func (k *Keystore) login(sh p11.SessionHandle, pin string) error {
	digest := sha256.Sum256([]byte(pin))
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if l := k.mod.logins[k.slot]; l != nil && l.refs > 0 {
		if subtle.ConstantTimeCompare(l.pin[:], digest[:]) != 1 {
			return &keystore.AccessDeniedError{Msg: fmt.Sprintf("pkcs11: token %q is already logged in by this process with a different PIN", k.label)}
		}
		l.refs++
		return nil
	}
	err := k.mod.ctx.Login(sh, p11.CKU_USER, pin)
	switch {
	case err == nil, isCode(err, p11.CKR_USER_ALREADY_LOGGED_IN):
		// ALREADY_LOGGED_IN without a record means a login by code outside
		// this package; accept it as the PKCS#11 model does.
	case isCode(err, p11.CKR_PIN_INCORRECT):
		return &keystore.AccessDeniedError{Msg: fmt.Sprintf("pkcs11: login to token %q failed: wrong user PIN (CKR_PIN_INCORRECT)", k.label)}
	case isCode(err, p11.CKR_PIN_LOCKED):
		return &keystore.AccessDeniedError{Msg: fmt.Sprintf("pkcs11: login to token %q failed: user PIN is locked (CKR_PIN_LOCKED)", k.label)}
	case isCode(err, p11.CKR_PIN_LEN_RANGE), isCode(err, p11.CKR_PIN_INVALID):
		return &keystore.AccessDeniedError{Msg: fmt.Sprintf("pkcs11: login to token %q failed: PIN rejected (%v)", k.label, err)}
	default:
		return &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: C_Login to token %q", k.label), Err: err}
	}
	k.mod.logins[k.slot] = &login{pin: digest, refs: 1}
	return nil
}

func findSlot(ctx *p11.Ctx, label string) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, &keystore.BackendError{Msg: "pkcs11: C_GetSlotList", Err: err}
	}
	var found []uint
	var seen []string
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		l := strings.TrimRight(ti.Label, " \x00")
		if l == label {
			found = append(found, s)
		} else if l != "" {
			seen = append(seen, fmt.Sprintf("%q", l))
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return 0, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: no token labelled %q (tokens present: [%s])", label, strings.Join(seen, ", "))}
	default:
		return 0, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: %d tokens are labelled %q; labels must be unique", len(found), label)}
	}
}

// Close closes the sessions (waiting for operations in flight) and releases
// the module. The token is logged out when the last session of this process
// on it closes. Keys obtained from the Keystore fail after Close.
func (k *Keystore) Close() error {
	k.closeMu.Lock()
	defer k.closeMu.Unlock()
	if k.closed.Load() {
		return nil
	}
	k.closed.Store(true)
	close(k.closing)
	var errs []error
	for range k.size {
		sh := <-k.pool
		if err := k.mod.ctx.CloseSession(sh); err != nil && !isCode(err, p11.CKR_SESSION_HANDLE_INVALID) {
			errs = append(errs, err)
		}
	}
	modulesMu.Lock()
	if l := k.mod.logins[k.slot]; l != nil {
		l.refs--
		if l.refs <= 0 {
			delete(k.mod.logins, k.slot)
		}
	}
	modulesMu.Unlock()
	if err := releaseModule(k.mod); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: closing token %q", k.label), Err: err}
	}
	return nil
}

var errClosed = errors.New("pkcs11: keystore is closed")

// withSession runs fn with a session from the pool. A session the module
// reports as invalid or closed is replaced before it goes back to the pool.
func (k *Keystore) withSession(ctx context.Context, fn func(sh p11.SessionHandle) error) error {
	if k.closed.Load() {
		return &keystore.BackendError{Msg: errClosed.Error()}
	}
	var sh p11.SessionHandle
	select {
	case sh = <-k.pool:
	case <-k.closing:
		return &keystore.BackendError{Msg: errClosed.Error()}
	case <-ctx.Done():
		return &keystore.BackendError{Msg: "pkcs11: waiting for a session", Err: ctx.Err()}
	}
	defer func() { k.pool <- sh }()
	if k.closed.Load() {
		return &keystore.BackendError{Msg: errClosed.Error()}
	}
	err := fn(sh)
	if isCode(err, p11.CKR_SESSION_HANDLE_INVALID) || isCode(err, p11.CKR_SESSION_CLOSED) {
		if nsh, oerr := k.mod.ctx.OpenSession(k.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION); oerr == nil {
			sh = nsh
		}
	}
	return err
}

// isCode reports whether err is the PKCS#11 return value code.
func isCode(err error, code uint) bool {
	var e p11.Error
	return errors.As(err, &e) && uint(e) == code
}
