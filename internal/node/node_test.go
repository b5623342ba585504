package node

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/httpserver"
)

// TestRunAllFirstErrorStopsAll: the first failure cancels the others and
// RunAll returns only after every service has returned.
func TestRunAllFirstErrorStopsAll(t *testing.T) {
	boom := errors.New("boom")
	returned := make(chan struct{})
	err := RunAll(context.Background(),
		NewService("waits", func(ctx context.Context) error { <-ctx.Done(); close(returned); return nil }),
		NewService("fails", func(context.Context) error { return boom }))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "fails: boom") {
		t.Fatalf("RunAll = %v, want the failing service's error named", err)
	}
	select {
	case <-returned:
	default:
		t.Fatal("RunAll returned before every service had returned")
	}
}

// TestHTTPServiceTakenPort: a taken port fails the build, naming it.
func TestHTTPServiceTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var cl closers
	defer cl.close()
	_, err = serveEarly(&cl, "http", ln.Addr().String(), http.NotFoundHandler(), nil, httpserver.Config{})
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("serveEarly on a taken port: %v", err)
	}
}

func TestOpenKeystoreNamesSettings(t *testing.T) {
	_, err := OpenKeystore(KeystoreConfig{})
	var se *SettingError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "--keys") || !strings.Contains(err.Error(), "SECURELOG_KEYS") {
		t.Errorf("no key directory: %v", err)
	}
	_, err = OpenKeystore(KeystoreConfig{Kind: "tpm"})
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "--keystore") || !strings.Contains(err.Error(), "tpm") {
		t.Errorf("bad kind: %v", err)
	}
}
