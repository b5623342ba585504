//go:build cgo

package pkcs11

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
)

// skipReason is set by TestMain when no token can be provided at all
// (softhsm2 not installed and no SECURELOG_PKCS11_* environment).
var skipReason string

// TestMain uses the token described by the SECURELOG_PKCS11_* environment
// (CI evals .ci/softhsm-setup.sh before `go test`); without it, it runs the
// setup script itself into a temporary directory when softhsm2-util exists.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(EnvModule) != "" {
		return m.Run()
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		skipReason = "softhsm2 is not installed and " + EnvModule + " is unset (run .ci/softhsm-setup.sh)"
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "securelog-pkcs11-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkcs11 test setup:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", ".ci", "softhsm-setup.sh")
	out, err := exec.Command("bash", "-c",
		`eval "$("$0" "$1")" && printf '%s\n' "SOFTHSM2_CONF=$SOFTHSM2_CONF" "`+EnvModule+`=$`+EnvModule+`" "`+EnvToken+`=$`+EnvToken+`" "`+EnvPINFile+`=$`+EnvPINFile+`"`,
		script, dir).Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pkcs11 test setup: %s %s: %v\n", script, dir, err)
		return 1
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, value, _ := strings.Cut(line, "=")
		os.Setenv(name, value)
	}
	os.Unsetenv(EnvPIN)
	return m.Run()
}

// testConfig returns the token configuration or skips when no SoftHSM exists.
func testConfig(t testing.TB) Config {
	t.Helper()
	if skipReason != "" {
		if os.Getenv("SECURELOG_REQUIRE_PKCS11") != "" {
			t.Fatalf("SECURELOG_REQUIRE_PKCS11 is set (CI) but %s", skipReason)
		}
		t.Skip(skipReason)
	}
	cfg, err := ConfigFrom(os.LookupEnv)
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	return cfg
}

// openTest opens the test token; Close runs at cleanup.
func openTest(t testing.TB) *Keystore {
	t.Helper()
	ks, err := Open(testConfig(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := ks.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ks
}

// uniqueLabel returns a label no earlier run used on a shared token.
func uniqueLabel(t testing.TB, what string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + "-" + hex.EncodeToString(b)
}

// verify checks sig over msg with Go's standard library, per SPEC §8.4.
func verify(alg string, pub, msg, sig []byte) error {
	switch alg {
	case keystore.Ed25519:
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("ed25519 public key has %d bytes", len(pub))
		}
		if !ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
			return fmt.Errorf("ed25519 signature does not verify")
		}
	case keystore.ECDSAP256:
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
		if err != nil {
			return fmt.Errorf("ecdsa-p256 public key is not a 65-byte uncompressed point: %w", err)
		}
		if len(sig) != 64 {
			return fmt.Errorf("ecdsa-p256 signature has %d bytes, want 64", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		d := sha256.Sum256(msg)
		if !ecdsa.Verify(pk, d[:], r, s) {
			return fmt.Errorf("ecdsa-p256 signature does not verify")
		}
	case keystore.RSAPSSSHA256:
		pk, err := x509.ParsePKCS1PublicKey(pub)
		if err != nil {
			return fmt.Errorf("rsa public key is not PKCS#1 DER: %w", err)
		}
		if len(sig) != pk.Size() {
			return fmt.Errorf("rsa signature has %d bytes, want %d", len(sig), pk.Size())
		}
		d := sha256.Sum256(msg)
		if err := rsa.VerifyPSS(pk, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
			return fmt.Errorf("rsa-pss signature does not verify: %w", err)
		}
	default:
		return fmt.Errorf("unknown algorithm %q", alg)
	}
	return nil
}

// checkpointHash is a stand-in for a 32-byte checkpoint hash (the message
// SPEC §8.3 signs).
func checkpointHash(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprintf("checkpoint %d", i)))
	return h[:]
}

func mustFlip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i%len(c)] ^= 0x01
	return c
}
