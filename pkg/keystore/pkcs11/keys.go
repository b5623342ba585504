//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/securelog/securelog/pkg/keystore"
)

// Key is a signing key held by the token. It implements keystore.Key; the
// private key never leaves the token. Sign is safe for concurrent use.
type Key struct {
	ks       *Keystore
	identity string
	alg      string
	pub      []byte
	priv     p11.ObjectHandle
	sigLen   int // expected signature length in bytes
}

var _ keystore.Key = (*Key)(nil)

// Identity returns the CKA_LABEL the key was found by.
func (k *Key) Identity() string { return k.identity }

// Algorithm returns keystore.Ed25519, keystore.ECDSAP256 or
// keystore.RSAPSSSHA256.
func (k *Key) Algorithm() string { return k.alg }

// PublicKey returns the SPEC §8.4 encoding: ed25519 32 raw bytes, ecdsa-p256
// SEC1 uncompressed 65 bytes, rsa-pss-sha256 PKCS#1 RSAPublicKey DER.
func (k *Key) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// Sign signs msg in the token and returns the SPEC §8.4 signature:
// ed25519 CKM_EDDSA (PureEdDSA) over msg; ecdsa-p256 CKM_ECDSA over
// SHA-256(msg) giving r‖s (64 bytes); rsa-pss-sha256 CKM_RSA_PKCS_PSS (hash
// SHA-256, MGF1-SHA256, salt 32) over SHA-256(msg), modulus-length bytes.
func (k *Key) Sign(msg []byte) ([]byte, error) {
	var mech *p11.Mechanism
	data := msg
	switch k.alg {
	case keystore.Ed25519:
		mech = p11.NewMechanism(ckmEdDSA, nil)
	case keystore.ECDSAP256:
		d := sha256.Sum256(msg)
		data = d[:]
		mech = p11.NewMechanism(p11.CKM_ECDSA, nil)
	case keystore.RSAPSSSHA256:
		d := sha256.Sum256(msg)
		data = d[:]
		mech = p11.NewMechanism(p11.CKM_RSA_PKCS_PSS, p11.NewPSSParams(p11.CKM_SHA256, p11.CKG_MGF1_SHA256, sha256.Size))
	default:
		return nil, &keystore.UnsupportedAlgorithmError{Algorithm: k.alg}
	}
	var sig []byte
	err := k.ks.withSession(context.Background(), func(sh p11.SessionHandle) error {
		ctx := k.ks.mod.ctx
		if err := ctx.SignInit(sh, []*p11.Mechanism{mech}, k.priv); err != nil {
			return err
		}
		s, err := ctx.Sign(sh, data)
		if err != nil {
			return err
		}
		sig = s
		return nil
	})
	if err != nil {
		return nil, k.signError(err)
	}
	if len(sig) != k.sigLen {
		return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: %s signature by %q has %d bytes, want %d", k.alg, k.identity, len(sig), k.sigLen)}
	}
	return sig, nil
}

func (k *Key) signError(err error) error {
	var be *keystore.BackendError
	if errors.As(err, &be) {
		return err
	}
	switch {
	case isCode(err, p11.CKR_USER_NOT_LOGGED_IN):
		return &keystore.AccessDeniedError{Msg: fmt.Sprintf("pkcs11: signing with %q: token %q is not logged in", k.identity, k.ks.label)}
	case isCode(err, p11.CKR_KEY_FUNCTION_NOT_PERMITTED):
		return &keystore.AccessDeniedError{Msg: fmt.Sprintf("pkcs11: key %q may not sign (CKA_SIGN is false)", k.identity)}
	case isCode(err, p11.CKR_MECHANISM_INVALID):
		return &keystore.UnsupportedAlgorithmError{Algorithm: k.alg + " (mechanism not supported by token " + k.ks.label + ")"}
	}
	return &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: signing with %q", k.identity), Err: err}
}

// GetKey finds the private and public key objects whose CKA_LABEL is
// identity, determines the algorithm from CKA_KEY_TYPE (and CKA_EC_PARAMS),
// and returns the key. No private key with that label gives a
// *keystore.KeyNotFoundError; a curve or key type other than Ed25519, P-256
// or RSA (≥ 2048 bits) a *keystore.UnsupportedAlgorithmError.
func (k *Keystore) GetKey(ctx context.Context, identity string) (keystore.Key, error) {
	if identity == "" {
		return nil, &keystore.KeyNotFoundError{Identity: identity}
	}
	var key *Key
	err := k.withSession(ctx, func(sh p11.SessionHandle) error {
		var err error
		key, err = k.loadKey(sh, identity)
		return err
	})
	if err != nil {
		return nil, wrapBackend(err, fmt.Sprintf("pkcs11: resolving key %q", identity))
	}
	return key, nil
}

// loadKey resolves identity on session sh.
func (k *Keystore) loadKey(sh p11.SessionHandle, identity string) (*Key, error) {
	ctx := k.mod.ctx
	privs, err := findObjects(ctx, sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_LABEL, identity),
	}, 2)
	if err != nil {
		return nil, err
	}
	switch len(privs) {
	case 0:
		return nil, &keystore.KeyNotFoundError{Identity: identity}
	case 1:
	default:
		return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: several private keys are labelled %q on token %q; labels must be unique", identity, k.label)}
	}
	priv := privs[0]
	attrs, err := ctx.GetAttributeValue(sh, priv, []*p11.Attribute{p11.NewAttribute(p11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, err
	}
	keyType, err := ulong(attrs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("CKA_KEY_TYPE of %q: %w", identity, err)
	}
	var ecParams []byte
	if keyType != p11.CKK_RSA {
		a, err := ctx.GetAttributeValue(sh, priv, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_PARAMS, nil)})
		if err != nil && !isCode(err, p11.CKR_ATTRIBUTE_TYPE_INVALID) {
			return nil, err
		}
		if err == nil {
			ecParams = a[0].Value
		}
	}
	alg, err := algorithmFor(keyType, ecParams)
	if err != nil {
		return nil, err
	}
	pubs, err := findObjects(ctx, sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_LABEL, identity),
	}, 2)
	if err != nil {
		return nil, err
	}
	if len(pubs) > 1 {
		return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: several public keys are labelled %q on token %q; labels must be unique", identity, k.label)}
	}
	key := &Key{ks: k, identity: identity, alg: alg, priv: priv}
	switch alg {
	case keystore.RSAPSSSHA256:
		// An RSA private key carries the public components too, so a
		// missing public object is not fatal.
		src := priv
		if len(pubs) == 1 {
			src = pubs[0]
		}
		a, err := ctx.GetAttributeValue(sh, src, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_MODULUS, nil),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return nil, err
		}
		pub, err := rsaPublicKeyDER(a[0].Value, a[1].Value)
		if err != nil {
			return nil, &keystore.UnsupportedAlgorithmError{Algorithm: fmt.Sprintf("pkcs11 RSA key %q: %v", identity, err)}
		}
		key.pub = pub
		key.sigLen = len(trimLeadingZeros(a[0].Value))
	default:
		if len(pubs) == 0 {
			return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: private key %q has no public key object with the same label on token %q", identity, k.label)}
		}
		a, err := ctx.GetAttributeValue(sh, pubs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
		if err != nil {
			return nil, err
		}
		pub, err := publicKeyFromECPoint(alg, a[0].Value)
		if err != nil {
			return nil, &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: public key %q", identity), Err: err}
		}
		key.pub = pub
		key.sigLen = 64
	}
	return key, nil
}

// Generate creates a key pair labelled identity in the token for alg
// (keystore.Ed25519, keystore.ECDSAP256 or keystore.RSAPSSSHA256 with a
// 2048-bit modulus and e = 65537). The private key is a token object with
// CKA_PRIVATE, CKA_SENSITIVE true and CKA_EXTRACTABLE false. Generate refuses
// (ErrLabelExists) when any object already carries the label.
//
// Ed25519 keys use CKM_EC_EDWARDS_KEY_PAIR_GEN with CKA_EC_PARAMS set to the
// RFC 8410 OID 1.3.101.112; tokens that reject it (SoftHSM 2.6.1 does) get the
// printable string "edwards25519" instead.
func (k *Keystore) Generate(identity, alg string) (keystore.Key, error) {
	if identity == "" {
		return nil, errors.New("pkcs11: Generate needs a non-empty identity label")
	}
	alg, err := keystore.ParseAlgorithm(alg)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, &keystore.BackendError{Msg: "pkcs11: random CKA_ID", Err: err}
	}
	common := func(class uint) []*p11.Attribute {
		return []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, class),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_LABEL, identity),
			p11.NewAttribute(p11.CKA_ID, id),
		}
	}
	pubT := append(common(p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_PRIVATE, false))
	privT := append(common(p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_SIGN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
	)
	var mechs [][]*p11.Mechanism // alternatives tried in order
	var pubTs [][]*p11.Attribute
	switch alg {
	case keystore.Ed25519:
		mech := []*p11.Mechanism{p11.NewMechanism(ckmECEdwardsKeyPairGen, nil)}
		for _, params := range [][]byte{ecParamsEd25519OID, ecParamsEd25519Name} {
			t := append(append([]*p11.Attribute(nil), pubT...), p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards), p11.NewAttribute(p11.CKA_EC_PARAMS, params))
			mechs, pubTs = append(mechs, mech), append(pubTs, t)
		}
		privT = append(privT, p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards))
	case keystore.ECDSAP256:
		t := append(pubT, p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC), p11.NewAttribute(p11.CKA_EC_PARAMS, ecParamsP256))
		mechs, pubTs = append(mechs, []*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)}), append(pubTs, t)
		privT = append(privT, p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC))
	case keystore.RSAPSSSHA256:
		t := append(pubT,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
			p11.NewAttribute(p11.CKA_MODULUS_BITS, minRSABits),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{0x01, 0x00, 0x01}),
		)
		mechs, pubTs = append(mechs, []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}), append(pubTs, t)
		privT = append(privT, p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA))
	}

	k.genMu.Lock()
	defer k.genMu.Unlock()
	var key *Key
	err = k.withSession(context.Background(), func(sh p11.SessionHandle) error {
		ctx := k.mod.ctx
		existing, err := findObjects(ctx, sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, identity)}, 1)
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return fmt.Errorf("generating %s key %q on token %q: %w", alg, identity, k.label, ErrLabelExists)
		}
		var genErr error
		for i := range mechs {
			if _, _, genErr = ctx.GenerateKeyPair(sh, mechs[i], pubTs[i], privT); genErr == nil {
				break
			}
			// SoftHSM versions differ in which Ed25519 EC_PARAMS form they
			// take: on a parameter complaint try the next form.
			if !isCode(genErr, p11.CKR_ATTRIBUTE_VALUE_INVALID) && !isCode(genErr, p11.CKR_CURVE_NOT_SUPPORTED) && !isCode(genErr, p11.CKR_DOMAIN_PARAMS_INVALID) {
				break
			}
		}
		if genErr != nil {
			if isCode(genErr, p11.CKR_MECHANISM_INVALID) {
				return &keystore.UnsupportedAlgorithmError{Algorithm: alg + " (key generation not supported by token " + k.label + ")"}
			}
			return &keystore.BackendError{Msg: fmt.Sprintf("pkcs11: generating %s key %q on token %q", alg, identity, k.label), Err: genErr}
		}
		key, err = k.loadKey(sh, identity)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrLabelExists) {
			return nil, err
		}
		return nil, wrapBackend(err, fmt.Sprintf("pkcs11: generating %s key %q", alg, identity))
	}
	return key, nil
}

// findObjects returns up to max handles matching tmpl.
func findObjects(ctx *p11.Ctx, sh p11.SessionHandle, tmpl []*p11.Attribute, max int) ([]p11.ObjectHandle, error) {
	if err := ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	objs, _, err := ctx.FindObjects(sh, max)
	if ferr := ctx.FindObjectsFinal(sh); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// wrapBackend leaves keystore errors as they are and wraps anything else
// (a raw PKCS#11 return value) as a *keystore.BackendError with context.
func wrapBackend(err error, msg string) error {
	var (
		nf *keystore.KeyNotFoundError
		ua *keystore.UnsupportedAlgorithmError
		ad *keystore.AccessDeniedError
		be *keystore.BackendError
	)
	if errors.As(err, &nf) || errors.As(err, &ua) || errors.As(err, &ad) || errors.As(err, &be) {
		return err
	}
	if isCode(err, p11.CKR_USER_NOT_LOGGED_IN) {
		return &keystore.AccessDeniedError{Msg: msg + ": token is not logged in"}
	}
	return &keystore.BackendError{Msg: msg, Err: err}
}

// ulong decodes a CK_ULONG attribute value (native byte order).
func ulong(b []byte) (uint, error) {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b)), nil
	case 4:
		return uint(binary.NativeEndian.Uint32(b)), nil
	default:
		return 0, fmt.Errorf("CK_ULONG attribute of %d bytes", len(b))
	}
}

func trimLeadingZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}
