//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/securelog/securelog/pkg/keystore"
)

func TestGenerateSignVerify(t *testing.T) {
	ks := openTest(t)
	for _, alg := range keystore.Algorithms {
		t.Run(alg, func(t *testing.T) {
			label := uniqueLabel(t, alg)
			key, err := ks.Generate(label, alg)
			if err != nil {
				t.Fatalf("Generate(%q, %q): %v", label, alg, err)
			}
			if key.Algorithm() != alg {
				t.Fatalf("Algorithm() = %q, want %q", key.Algorithm(), alg)
			}
			// A fresh lookup must find the same key.
			got, err := ks.GetKey(context.Background(), label)
			if err != nil {
				t.Fatalf("GetKey(%q): %v", label, err)
			}
			if got.Algorithm() != alg || !bytes.Equal(got.PublicKey(), key.PublicKey()) {
				t.Fatalf("GetKey returned %s %x, Generate %s %x", got.Algorithm(), got.PublicKey(), alg, key.PublicKey())
			}
			pub := got.PublicKey()
			for i := range 3 {
				msg := checkpointHash(i)
				sig, err := got.Sign(msg)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if err := verify(alg, pub, msg, sig); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if err := verify(alg, pub, checkpointHash(i+100), sig); err == nil {
					t.Fatalf("signature over message %d also verifies for another message", i)
				}
				if err := verify(alg, pub, msg, mustFlip(sig, 7)); err == nil {
					t.Fatalf("altered signature verifies")
				}
			}
		})
	}
}

func TestPublicKeyEncodings(t *testing.T) {
	ks := openTest(t)
	for _, tc := range []struct {
		alg    string
		length int
		prefix byte
	}{
		{keystore.Ed25519, 32, 0},
		{keystore.ECDSAP256, 65, 0x04},
		{keystore.RSAPSSSHA256, 270, 0x30}, // SEQUENCE{INTEGER n (257 bytes), INTEGER 65537}
	} {
		t.Run(tc.alg, func(t *testing.T) {
			key, err := ks.Generate(uniqueLabel(t, tc.alg), tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			pub := key.PublicKey()
			if len(pub) != tc.length {
				t.Fatalf("public key has %d bytes, want %d: %x", len(pub), tc.length, pub)
			}
			if tc.prefix != 0 && pub[0] != tc.prefix {
				t.Fatalf("public key starts with %#x, want %#x", pub[0], tc.prefix)
			}
			if tc.alg == keystore.RSAPSSSHA256 {
				if err := verify(tc.alg, pub, nil, nil); err == nil || !strings.Contains(err.Error(), "want 256") {
					t.Fatalf("RSA key does not parse as a 2048-bit PKCS#1 key: %v", err)
				}
			}
			// PublicKey returns a copy.
			pub[0] ^= 0xff
			if bytes.Equal(pub, key.PublicKey()) {
				t.Fatal("PublicKey exposes internal storage")
			}
		})
	}
}

func TestGeneratedKeyIsNotExtractable(t *testing.T) {
	ks := openTest(t)
	ctx := ks.mod.ctx
	for _, alg := range keystore.Algorithms {
		t.Run(alg, func(t *testing.T) {
			key, err := ks.Generate(uniqueLabel(t, alg), alg)
			if err != nil {
				t.Fatal(err)
			}
			priv := key.(*Key).priv
			secret := uint(p11.CKA_VALUE)
			if alg == keystore.RSAPSSSHA256 {
				secret = p11.CKA_PRIVATE_EXPONENT
			}
			err = ks.withSession(context.Background(), func(sh p11.SessionHandle) error {
				attrs, err := ctx.GetAttributeValue(sh, priv, []*p11.Attribute{
					p11.NewAttribute(p11.CKA_TOKEN, nil),
					p11.NewAttribute(p11.CKA_PRIVATE, nil),
					p11.NewAttribute(p11.CKA_SENSITIVE, nil),
					p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
					p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil),
					p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
				})
				if err != nil {
					t.Fatalf("reading flags: %v", err)
				}
				want := []byte{1, 1, 1, 0, 1, 1}
				for i, a := range attrs {
					if len(a.Value) != 1 || a.Value[0] != want[i] {
						t.Errorf("attribute %#x = %v, want %d", a.Type, a.Value, want[i])
					}
				}
				if _, err := ctx.GetAttributeValue(sh, priv, []*p11.Attribute{p11.NewAttribute(secret, nil)}); !isCode(err, p11.CKR_ATTRIBUTE_SENSITIVE) {
					t.Errorf("reading the private value: err = %v, want CKR_ATTRIBUTE_SENSITIVE", err)
				}
				if err := ctx.SetAttributeValue(sh, priv, []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, true)}); err == nil {
					t.Errorf("setting CKA_EXTRACTABLE back to true succeeded")
				}
				wk, err := ks.wrappingKey(sh, uniqueLabel(t, "wrap"), true)
				if err != nil {
					t.Fatalf("wrapping key: %v", err)
				}
				for _, m := range []uint{p11.CKM_AES_KEY_WRAP_PAD, p11.CKM_AES_KEY_WRAP} {
					out, err := ctx.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(m, nil)}, wk, priv)
					if err == nil {
						t.Errorf("wrapping the private key with mechanism %#x returned %d bytes", m, len(out))
					} else if m == p11.CKM_AES_KEY_WRAP_PAD && !isCode(err, p11.CKR_KEY_UNEXTRACTABLE) {
						t.Errorf("wrapping with CKM_AES_KEY_WRAP_PAD: err = %v, want CKR_KEY_UNEXTRACTABLE", err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGetKeyNotFound(t *testing.T) {
	ks := openTest(t)
	for _, label := range []string{uniqueLabel(t, "absent"), ""} {
		_, err := ks.GetKey(context.Background(), label)
		var nf *keystore.KeyNotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("GetKey(%q): err = %v (%T), want *keystore.KeyNotFoundError", label, err, err)
		}
		if nf.Identity != label {
			t.Fatalf("KeyNotFoundError.Identity = %q, want %q", nf.Identity, label)
		}
	}
	// A secret key with the label is not a signing key either.
	label := uniqueLabel(t, "aes-only")
	if _, err := ks.NewWrappedKEK(label); err != nil {
		t.Fatal(err)
	}
	var nf *keystore.KeyNotFoundError
	if _, err := ks.GetKey(context.Background(), label); !errors.As(err, &nf) {
		t.Fatalf("GetKey on an AES key label: err = %v, want KeyNotFoundError", err)
	}
}

func TestGenerateRefusesExistingLabel(t *testing.T) {
	ks := openTest(t)
	label := uniqueLabel(t, "dup")
	first, err := ks.Generate(label, keystore.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range keystore.Algorithms {
		if _, err := ks.Generate(label, alg); !errors.Is(err, ErrLabelExists) {
			t.Fatalf("second Generate(%q, %q): err = %v, want ErrLabelExists", label, alg, err)
		}
	}
	got, err := ks.GetKey(context.Background(), label)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.PublicKey(), first.PublicKey()) {
		t.Fatal("the refused Generate changed the key")
	}
	var ua *keystore.UnsupportedAlgorithmError
	if _, err := ks.Generate(uniqueLabel(t, "bad"), "Ed25519"); !errors.As(err, &ua) {
		t.Fatalf("Generate with alg %q: err = %v, want UnsupportedAlgorithmError", "Ed25519", err)
	}
}

func TestOpenErrors(t *testing.T) {
	cfg := testConfig(t)
	t.Run("wrong PIN", func(t *testing.T) {
		bad := cfg
		bad.PIN = cfg.PIN + "9"
		ks, err := Open(bad)
		var ad *keystore.AccessDeniedError
		if !errors.As(err, &ad) || !strings.Contains(err.Error(), "wrong user PIN") || !strings.Contains(err.Error(), cfg.TokenLabel) {
			if ks != nil {
				ks.Close()
			}
			t.Fatalf("Open with a wrong PIN: err = %v, want AccessDeniedError naming the wrong PIN and token", err)
		}
		// The failed attempt leaves nothing behind: a good Open works.
		good, err := Open(cfg)
		if err != nil {
			t.Fatalf("Open after a wrong PIN: %v", err)
		}
		defer good.Close()
		// While this process is logged in, a second Open must still check
		// the PIN rather than ride on the existing login.
		if ks, err := Open(bad); !errors.As(err, &ad) {
			if ks != nil {
				ks.Close()
			}
			t.Fatalf("Open with a wrong PIN while logged in: err = %v, want AccessDeniedError", err)
		}
		second, err := Open(cfg)
		if err != nil {
			t.Fatalf("second Open with the right PIN: %v", err)
		}
		if err := second.Close(); err != nil {
			t.Fatal(err)
		}
		// Closing the second keystore leaves the first logged in.
		k, err := good.Generate(uniqueLabel(t, "after-close"), keystore.Ed25519)
		if err != nil {
			t.Fatalf("Generate after closing a sibling keystore: %v", err)
		}
		if _, err := k.Sign(checkpointHash(1)); err != nil {
			t.Fatalf("Sign after closing a sibling keystore: %v", err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		bad := cfg
		bad.TokenLabel = "no-such-token"
		_, err := Open(bad)
		var be *keystore.BackendError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), `"no-such-token"`) {
			t.Fatalf("Open(unknown token): err = %v, want BackendError naming the label", err)
		}
	})
	t.Run("bad module", func(t *testing.T) {
		bad := cfg
		bad.Module = filepath.Join(t.TempDir(), "missing.so")
		if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), "missing.so") {
			t.Fatalf("Open(missing module): err = %v, want an error naming the module", err)
		}
	})
	t.Run("empty PIN", func(t *testing.T) {
		bad := cfg
		bad.PIN = ""
		var ad *keystore.AccessDeniedError
		if _, err := Open(bad); !errors.As(err, &ad) {
			t.Fatalf("Open(empty PIN): err = %v, want AccessDeniedError", err)
		}
	})
}

func TestClosedKeystore(t *testing.T) {
	ks, err := Open(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ks.Generate(uniqueLabel(t, "closed"), keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ks.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var be *keystore.BackendError
	if _, err := key.Sign(checkpointHash(0)); !errors.As(err, &be) {
		t.Fatalf("Sign after Close: err = %v, want BackendError", err)
	}
	if _, err := ks.GetKey(context.Background(), "x"); !errors.As(err, &be) {
		t.Fatalf("GetKey after Close: err = %v, want BackendError", err)
	}
}

func TestGetKeyHonoursContext(t *testing.T) {
	cfg := testConfig(t)
	cfg.Sessions = 1
	ks, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	// Hold the only session, so GetKey has to wait and sees the cancel.
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ks.withSession(context.Background(), func(p11.SessionHandle) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ks.GetKey(ctx, "anything")
	close(release)
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("GetKey with a cancelled context and no free session: err = %v, want context.Canceled", err)
	}
}

func TestConcurrentSign(t *testing.T) {
	ks := openTest(t)
	perGoroutine := map[string]int{keystore.Ed25519: 25, keystore.ECDSAP256: 25, keystore.RSAPSSSHA256: 4}
	for _, alg := range keystore.Algorithms {
		t.Run(alg, func(t *testing.T) {
			key, err := ks.Generate(uniqueLabel(t, "conc"), alg)
			if err != nil {
				t.Fatal(err)
			}
			pub := key.PublicKey()
			const goroutines = 8
			errs := make(chan error, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range perGoroutine[alg] {
						msg := checkpointHash(g*1000 + i)
						sig, err := key.Sign(msg)
						if err == nil {
							err = verify(alg, pub, msg, sig)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func BenchmarkPKCS11Sign(b *testing.B) {
	ks := openTest(b)
	for _, alg := range keystore.Algorithms {
		key, err := ks.Generate(uniqueLabel(b, "bench"), alg)
		if err != nil {
			b.Fatal(err)
		}
		msg := checkpointHash(0)
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := key.Sign(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := key.Sign(msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
