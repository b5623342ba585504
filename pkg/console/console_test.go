package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServesEmbeddedFiles(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Wrap(next)
	if r := get(t, h, "GET", "/v1/streams"); r.StatusCode != http.StatusTeapot {
		t.Errorf("/v1/streams went to the console: %d", r.StatusCode)
	}
	if r := get(t, h, "GET", "/ui"); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	r := get(t, h, "GET", "/ui/")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/ui/: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if b := body(t, r); !bytes.Contains(b, []byte(`<script src="app.js"`)) {
		t.Errorf("index.html: %s", b)
	}
	for _, p := range []string{"/ui/app.js", "/ui/style.css", "/ui/audit-worker.js"} {
		if r := get(t, h, "GET", p); r.StatusCode != 200 {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
	for _, p := range []string{"/ui/nope.js", "/ui/static/app.js", "/ui/../console.go"} {
		if r := get(t, h, "GET", p); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, r.StatusCode)
		}
	}
	if r := get(t, h, "POST", "/ui/app.js"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.StatusCode)
	}
	r = get(t, h, "GET", "/ui/app.js")
	etag := r.Header.Get("ETag")
	if r := get(t, h, "GET", "/ui/app.js", "If-None-Match", etag); etag == "" || r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d", etag, r.StatusCode)
	}
}

// TestVerifierModuleServed checks the module is served whole, gzip-encoded
// only to clients that accept it.
func TestVerifierModuleServed(t *testing.T) {
	wasm, err := VerifierWasm()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		t.Fatalf("embedded verifier is not a wasm module: % x", wasm[:8])
	}
	h := Handler()
	r := get(t, h, "GET", "/ui/verifier.wasm")
	if r.Header.Get("Content-Type") != "application/wasm" || r.Header.Get("Content-Encoding") != "" || !bytes.Equal(body(t, r), wasm) {
		t.Errorf("plain: %v", r.Header)
	}
	r = get(t, h, "GET", "/ui/verifier.wasm", "Accept-Encoding", "br, gzip")
	if r.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip: %v", r.Header)
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); !bytes.Equal(b, wasm) {
		t.Error("gzip body differs")
	}
	if r := get(t, h, "GET", "/ui/verifier.wasm", "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
}

// TestNoOtherOrigin checks that no page, script or style names another
// origin: the console works offline and loads nothing from a CDN.
func TestNoOtherOrigin(t *testing.T) {
	all, err := load()
	if err != nil {
		t.Fatal(err)
	}
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name, a := range all {
		if strings.HasSuffix(name, ".wasm") {
			continue
		}
		if m := url.Find(a.body); m != nil {
			t.Errorf("%s names another origin: %s", name, m)
		}
	}
}
