// Package console serves the web console: a small single-page app under
// /ui/ over the query API (/v1/, pkg/queryapi) of the same listener, and
// the "Audit a bundle" page that runs the bundle verifier compiled to
// WebAssembly (cmd/securelog-verifier) in the browser. Everything it serves
// is embedded in the binary: no CDN, no request to any other origin, and it
// works offline.
//
// The pages themselves hold no data and need no token; every data request
// they make goes to /v1/ with the reader token the user signs in with.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
)

//go:generate go run ./internal/genwasm -o static/verifier.wasm.gz

// Prefix is where the console is served.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// csp allows this origin only; 'wasm-unsafe-eval' lets the audit worker
// compile the verifier module.
const csp = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; " +
	"style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte // identity encoding
	gz    []byte // gzip encoding, when smaller
	ctype string
	etag  string
}

var (
	loadOnce sync.Once
	assets   map[string]*asset
	loadErr  error
)

var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".wasm": "application/wasm",
}

// load reads the embedded files once: verifier.wasm.gz is served as
// verifier.wasm (gzip-encoded to clients that accept it).
func load() (map[string]*asset, error) {
	loadOnce.Do(func() {
		assets = map[string]*asset{}
		loadErr = fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := static.ReadFile(p)
			if err != nil {
				return err
			}
			name := strings.TrimPrefix(p, "static/")
			a := &asset{}
			if strings.HasSuffix(name, ".gz") {
				name = strings.TrimSuffix(name, ".gz")
				a.gz = b
				zr, err := gzip.NewReader(bytes.NewReader(b))
				if err != nil {
					return fmt.Errorf("console: %s: %w", p, err)
				}
				if a.body, err = io.ReadAll(zr); err != nil {
					return fmt.Errorf("console: %s: %w", p, err)
				}
			} else {
				a.body = b
			}
			a.ctype = types[path.Ext(name)]
			if a.ctype == "" {
				a.ctype = "application/octet-stream"
			}
			sum := sha256.Sum256(a.body)
			a.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
			assets[name] = a
			return nil
		})
	})
	return assets, loadErr
}

// VerifierWasm returns the embedded verifier module (the WASI reactor of
// cmd/securelog-verifier) that the audit page runs.
func VerifierWasm() ([]byte, error) {
	a, err := load()
	if err != nil {
		return nil, err
	}
	w, ok := a["verifier.wasm"]
	if !ok {
		return nil, fmt.Errorf("console: verifier.wasm is not embedded (run go generate ./pkg/console)")
	}
	return w.body, nil
}

// Handler serves the console's files under Prefix; /ui redirects to /ui/.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

// Handles reports whether r is for the console.
func Handles(r *http.Request) bool {
	return r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, Prefix)
}

// Wrap serves the console for its paths and hands every other request to
// next.
func Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Handles(r) {
			serve(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if name == "" {
		name = "index.html"
	}
	all, err := load()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a, ok := all[name]
	if !ok || strings.Contains(name, "/") {
		http.Error(w, "not found: "+r.URL.Path, http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Add("Vary", "Accept-Encoding")
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
