//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/securelog/securelog/pkg/keystore"
)

func TestWrappedKEKRoundTrip(t *testing.T) {
	ks := openTest(t)
	label := uniqueLabel(t, "kek-wrap")
	w1, err := ks.NewWrappedKEK(label) // creates the wrapping key
	if err != nil {
		t.Fatalf("NewWrappedKEK: %v", err)
	}
	w2, err := ks.NewWrappedKEK(label) // reuses it
	if err != nil {
		t.Fatalf("second NewWrappedKEK: %v", err)
	}
	if len(w1) != WrappedKEKSize || len(w2) != WrappedKEKSize {
		t.Fatalf("wrapped sizes %d, %d, want %d", len(w1), len(w2), WrappedKEKSize)
	}
	k1, err := ks.LoadWrappedKEK(label, w1)
	if err != nil {
		t.Fatalf("LoadWrappedKEK: %v", err)
	}
	k1again, err := ks.LoadWrappedKEK(label, w1)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ks.LoadWrappedKEK(label, w2)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KEKSize || !bytes.Equal(k1, k1again) {
		t.Fatalf("unwrapping twice gave %x and %x", k1, k1again)
	}
	if bytes.Equal(k1, k2) || bytes.Equal(w1, w2) {
		t.Fatal("two NewWrappedKEK calls produced the same KEK")
	}
	if bytes.Contains(w1, k1) {
		t.Fatal("the wrapped KEK contains the clear KEK")
	}

	// The KEK survives closing and reopening the token (the wrapping key is
	// a token object).
	ks2, err := Open(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ks2.Close()
	if k, err := ks2.LoadWrappedKEK(label, w1); err != nil || !bytes.Equal(k, k1) {
		t.Fatalf("LoadWrappedKEK from a second keystore: %x, %v; want %x", k, err, k1)
	}

	t.Run("tampered", func(t *testing.T) {
		for _, i := range []int{0, 20, WrappedKEKSize - 1} {
			var be *keystore.BackendError
			if _, err := ks.LoadWrappedKEK(label, mustFlip(w1, i)); !errors.As(err, &be) {
				t.Fatalf("byte %d flipped: err = %v, want BackendError", i, err)
			}
		}
		if _, err := ks.LoadWrappedKEK(label, w1[:WrappedKEKSize-8]); err == nil {
			t.Fatal("truncated wrapped KEK accepted")
		}
	})
	t.Run("other wrapping key", func(t *testing.T) {
		other := uniqueLabel(t, "kek-other")
		if _, err := ks.NewWrappedKEK(other); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.LoadWrappedKEK(other, w1); err == nil {
			t.Fatal("a KEK wrapped under one key unwrapped under another")
		}
	})
	t.Run("missing wrapping key", func(t *testing.T) {
		var nf *keystore.KeyNotFoundError
		missing := uniqueLabel(t, "kek-missing")
		if _, err := ks.LoadWrappedKEK(missing, w1); !errors.As(err, &nf) || nf.Identity != missing {
			t.Fatalf("err = %v, want KeyNotFoundError{%q}", err, missing)
		}
	})
	t.Run("label used by a signing key", func(t *testing.T) {
		l := uniqueLabel(t, "kek-clash")
		if _, err := ks.Generate(l, keystore.Ed25519); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.NewWrappedKEK(l); !errors.Is(err, ErrLabelExists) {
			t.Fatalf("NewWrappedKEK on a signing key's label: err = %v, want ErrLabelExists", err)
		}
	})
	t.Run("wrapping key stays in the token", func(t *testing.T) {
		ctx := ks.mod.ctx
		err := ks.withSession(context.Background(), func(sh p11.SessionHandle) error {
			wk, err := ks.wrappingKey(sh, label, false)
			if err != nil {
				return err
			}
			a, err := ctx.GetAttributeValue(sh, wk, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_TOKEN, nil),
				p11.NewAttribute(p11.CKA_SENSITIVE, nil),
				p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
				p11.NewAttribute(p11.CKA_VALUE_LEN, nil),
			})
			if err != nil {
				return err
			}
			if a[0].Value[0] != 1 || a[1].Value[0] != 1 || a[2].Value[0] != 0 {
				t.Errorf("wrapping key TOKEN/SENSITIVE/EXTRACTABLE = %v/%v/%v, want 1/1/0", a[0].Value, a[1].Value, a[2].Value)
			}
			if n, _ := ulong(a[3].Value); n != 32 {
				t.Errorf("wrapping key CKA_VALUE_LEN = %d, want 32 (AES-256)", n)
			}
			if _, err := ctx.GetAttributeValue(sh, wk, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)}); !isCode(err, p11.CKR_ATTRIBUTE_SENSITIVE) {
				t.Errorf("reading the wrapping key's value: err = %v, want CKR_ATTRIBUTE_SENSITIVE", err)
			}
			// No session KEK object is left behind.
			objs, err := findObjects(ctx, sh, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
				p11.NewAttribute(p11.CKA_TOKEN, false),
			}, 1)
			if err != nil {
				return err
			}
			if len(objs) != 0 {
				t.Errorf("%d session generic-secret objects left in the token", len(objs))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
