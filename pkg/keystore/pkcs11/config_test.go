package pkcs11

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pinNL := write("pin-nl", "4321\n")
	pinCRLF := write("pin-crlf", "4321\r\n")
	pinEmpty := write("pin-empty", "\n")
	pinReadable := write("pin-readable", "4321\n")
	if err := os.Chmod(pinReadable, 0o644); err != nil {
		t.Fatal(err)
	}
	unset := "\x00unset"
	for _, tc := range []struct {
		name                  string
		module, token         string
		pin, pinFile, wantPIN string
		wantErr               string
	}{
		{"pin file", "/m.so", "tok", unset, pinNL, "4321", ""},
		{"pin file crlf", "/m.so", "tok", unset, pinCRLF, "4321", ""},
		{"pin env", "/m.so", "tok", "99 99", unset, "99 99", ""},
		{"no module", "", "tok", "1", unset, "", EnvModule},
		{"no token", "/m.so", "", "1", unset, "", EnvToken},
		{"no pin", "/m.so", "tok", unset, unset, "", EnvPINFile},
		{"both pins", "/m.so", "tok", "1", pinNL, "", "both"},
		{"empty pin env", "/m.so", "tok", "", unset, "", "empty"},
		{"empty pin file", "/m.so", "tok", unset, pinEmpty, "", "is empty"},
		{"missing pin file", "/m.so", "tok", unset, filepath.Join(dir, "nope"), "", "nope"},
		{"readable pin file", "/m.so", "tok", unset, pinReadable, "", "chmod 600 " + pinReadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvModule, tc.module)
			t.Setenv(EnvToken, tc.token)
			for name, v := range map[string]string{EnvPIN: tc.pin, EnvPINFile: tc.pinFile} {
				t.Setenv(name, "") // restores the original value at cleanup
				if v == unset {
					os.Unsetenv(name)
				} else {
					os.Setenv(name, v)
				}
			}
			cfg, err := ConfigFrom(os.LookupEnv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Module != tc.module || cfg.TokenLabel != tc.token || cfg.PIN != tc.wantPIN {
				t.Fatalf("cfg = %+v", cfg)
			}
		})
	}
}
