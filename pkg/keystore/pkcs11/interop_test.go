//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/securelog/securelog/pkg/keystore"
)

// TestGeneratedEd25519Params records which CKA_EC_PARAMS form Generate got
// the token to accept, and that GetKey reads it back.
func TestGeneratedEd25519Params(t *testing.T) {
	ks := openTest(t)
	key, err := ks.Generate(uniqueLabel(t, "ed-params"), keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	err = ks.withSession(context.Background(), func(sh p11.SessionHandle) error {
		a, err := ks.mod.ctx.GetAttributeValue(sh, key.(*Key).priv, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_PARAMS, nil)})
		if err != nil {
			return err
		}
		switch {
		case bytes.Equal(a[0].Value, ecParamsEd25519OID):
			t.Logf("token accepted the RFC 8410 OID form of the Ed25519 EC params")
		case bytes.Equal(a[0].Value, ecParamsEd25519Name):
			t.Logf("token accepted only the printable-string form of the Ed25519 EC params")
		default:
			t.Errorf("generated Ed25519 key has EC params %x", a[0].Value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeysMadeByPKCS11Tool resolves keys created outside securelog by
// OpenSC's pkcs11-tool, which writes the Ed25519 EC params as the printable
// string "edwards25519" rather than the OID.
func TestKeysMadeByPKCS11Tool(t *testing.T) {
	cfg := testConfig(t)
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		t.Skip("pkcs11-tool (opensc) is not installed; .ci/softhsm-setup.sh installs it")
	}
	ks := openTest(t)
	for _, tc := range []struct{ alg, keyType string }{
		{keystore.Ed25519, "EC:edwards25519"},
		{keystore.ECDSAP256, "EC:prime256v1"},
		{keystore.RSAPSSSHA256, "rsa:2048"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			label := uniqueLabel(t, "tool-"+tc.alg)
			cmd := exec.Command(tool, "--module", cfg.Module, "--token-label", cfg.TokenLabel,
				"--login", "--pin", cfg.PIN, "--keypairgen", "--key-type", tc.keyType, "--label", label)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("pkcs11-tool --keypairgen %s: %v\n%s", tc.keyType, err, out)
			}
			key, err := ks.GetKey(context.Background(), label)
			if err != nil {
				t.Fatalf("GetKey(%q): %v", label, err)
			}
			if key.Algorithm() != tc.alg {
				t.Fatalf("Algorithm() = %q, want %q", key.Algorithm(), tc.alg)
			}
			msg := checkpointHash(7)
			sig, err := key.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := verify(tc.alg, key.PublicKey(), msg, sig); err != nil {
				t.Fatal(err)
			}
		})
	}
}
