//go:build cgo

package pkcs11

import (
	"context"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/securelog/securelog/pkg/keystore"
)

// The master KEK in a token (DECISIONS 6)
//
// The KEK is the HKDF input key of SPEC §12.1, so it has to be available to Go
// code as 32 clear bytes while the log runs. The token protects it at rest:
//
//   - A token object, an AES-256 "wrapping key" (CKK_AES, CKA_TOKEN,
//     CKA_SENSITIVE, CKA_EXTRACTABLE false, usable only for CKA_WRAP and
//     CKA_UNWRAP), never leaves the token.
//   - NewWrappedKEK generates the 32-byte KEK inside the token as a session
//     CKK_GENERIC_SECRET and returns it wrapped with CKM_AES_KEY_WRAP (RFC
//     3394, 40 bytes). The caller stores those bytes in the KEK file; the clear
//     KEK is never written anywhere.
//   - LoadWrappedKEK unwraps the file content inside the token (C_UnwrapKey,
//     which also checks the RFC 3394 integrity block) into a session object,
//     reads its value and destroys the object.
//
// So the clear KEK exists only in process memory for the lifetime of the log,
// never on disk; stealing the KEK file without the token (and its PIN) yields
// nothing. Anyone holding the token and the PIN can unwrap it, as they could
// use the signing keys.

// NewWrappedKEK returns a fresh random KEK wrapped under the AES-256 wrapping
// key labelled wrappingLabel, creating that key (non-extractable, token
// object) if the token has none. The result is WrappedKEKSize bytes, to be
// kept in the KEK file and given to LoadWrappedKEK.
func (k *Keystore) NewWrappedKEK(wrappingLabel string) ([]byte, error) {
	if wrappingLabel == "" {
		return nil, fmt.Errorf("pkcs11: NewWrappedKEK needs a non-empty wrapping key label")
	}
	var wrapped []byte
	err := k.withSession(context.Background(), func(sh p11.SessionHandle) error {
		ctx := k.mod.ctx
		wk, err := k.wrappingKey(sh, wrappingLabel, true)
		if err != nil {
			return err
		}
		kek, err := ctx.GenerateKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
			p11.NewAttribute(p11.CKA_VALUE_LEN, KEKSize),
			p11.NewAttribute(p11.CKA_TOKEN, false),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, true), // only by wrapping, since it is sensitive
		})
		if err != nil {
			return fmt.Errorf("generating the KEK: %w", err)
		}
		defer func() { _ = ctx.DestroyObject(sh, kek) }()
		w, err := ctx.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP, nil)}, wk, kek)
		if err != nil {
			return fmt.Errorf("wrapping the KEK with %q: %w", wrappingLabel, err)
		}
		wrapped = w
		return nil
	})
	if err != nil {
		return nil, wrapBackend(err, fmt.Sprintf("pkcs11: new wrapped KEK under %q on token %q", wrappingLabel, k.label))
	}
	if len(wrapped) != WrappedKEKSize {
		return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: wrapped KEK has %d bytes, want %d", len(wrapped), WrappedKEKSize)}
	}
	return wrapped, nil
}

// LoadWrappedKEK unwraps wrapped (from NewWrappedKEK) with the AES wrapping
// key labelled wrappingLabel inside the token and returns the 32-byte clear
// KEK for use as the HKDF input of SPEC §12.1. The caller should keep it in
// memory only. A missing wrapping key gives a *keystore.KeyNotFoundError;
// bytes that were not wrapped by that key (tampered, truncated, another
// token) a *keystore.BackendError.
func (k *Keystore) LoadWrappedKEK(wrappingLabel string, wrapped []byte) ([]byte, error) {
	if len(wrapped) != WrappedKEKSize {
		return nil, fmt.Errorf("pkcs11: wrapped KEK has %d bytes, want %d (RFC 3394 wrap of a 32-byte key)", len(wrapped), WrappedKEKSize)
	}
	var kek []byte
	err := k.withSession(context.Background(), func(sh p11.SessionHandle) error {
		ctx := k.mod.ctx
		wk, err := k.wrappingKey(sh, wrappingLabel, false)
		if err != nil {
			return err
		}
		obj, err := ctx.UnwrapKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP, nil)}, wk, wrapped, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
			p11.NewAttribute(p11.CKA_TOKEN, false),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, false),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		})
		if err != nil {
			return fmt.Errorf("unwrapping the KEK with %q (wrong key, or the wrapped bytes were altered): %w", wrappingLabel, err)
		}
		defer func() { _ = ctx.DestroyObject(sh, obj) }()
		a, err := ctx.GetAttributeValue(sh, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
		if err != nil {
			return fmt.Errorf("reading the unwrapped KEK: %w", err)
		}
		kek = a[0].Value
		return nil
	})
	if err != nil {
		return nil, wrapBackend(err, fmt.Sprintf("pkcs11: loading wrapped KEK under %q on token %q", wrappingLabel, k.label))
	}
	if len(kek) != KEKSize {
		clear(kek)
		return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: unwrapped KEK has %d bytes, want %d", len(kek), KEKSize)}
	}
	return kek, nil
}

// wrappingKey finds the AES wrapping key labelled label; with create it
// generates one when absent (under genMu, so concurrent callers agree).
func (k *Keystore) wrappingKey(sh p11.SessionHandle, label string, create bool) (p11.ObjectHandle, error) {
	ctx := k.mod.ctx
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_LABEL, label),
	}
	if create {
		k.genMu.Lock()
		defer k.genMu.Unlock()
	}
	objs, err := findObjects(ctx, sh, tmpl, 2)
	if err != nil {
		return 0, err
	}
	switch len(objs) {
	case 1:
		a, err := ctx.GetAttributeValue(sh, objs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_KEY_TYPE, nil)})
		if err != nil {
			return 0, err
		}
		if kt, err := ulong(a[0].Value); err != nil || kt != p11.CKK_AES {
			return 0, &keystore.UnsupportedAlgorithmError{Algorithm: fmt.Sprintf("pkcs11 secret key %q is not an AES key (CKA_KEY_TYPE 0x%x)", label, kt)}
		}
		return objs[0], nil
	case 0:
	default:
		return 0, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: several secret keys are labelled %q on token %q; labels must be unique", label, k.label)}
	}
	if !create {
		return 0, &keystore.KeyNotFoundError{Identity: label}
	}
	if others, err := findObjects(ctx, sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, label)}, 1); err != nil {
		return 0, err
	} else if len(others) > 0 {
		return 0, fmt.Errorf("creating AES wrapping key %q: %w", label, ErrLabelExists)
	}
	h, err := ctx.GenerateKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
		p11.NewAttribute(p11.CKA_LABEL, label),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_WRAP, true),
		p11.NewAttribute(p11.CKA_UNWRAP, true),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_VERIFY, false),
	})
	if err != nil {
		return 0, fmt.Errorf("creating AES-256 wrapping key %q: %w", label, err)
	}
	return h, nil
}
