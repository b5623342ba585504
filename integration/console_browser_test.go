package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/bundle/bundletest"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// chromiumPath finds Debian's chromium. Missing, the browser test skips on
// a developer machine and fails under CI, which installs it and sets
// SECURELOG_REQUIRE_CHROMIUM=1 (.ci/run).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SECURELOG_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium is not installed but SECURELOG_REQUIRE_CHROMIUM is set (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); CI sets SECURELOG_REQUIRE_CHROMIUM=1 and installs it")
	return ""
}

// newBrowser starts headless chromium with a fresh profile and the flags
// this closed network needs, and returns a tab context.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run runs chromedp actions, failing the test with the step's name.
func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v\npage: %s", step, err, pageText(ctx))
	}
}

// value runs one chromedp action that returns a value.
func value[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v\npage: %s", step, err, pageText(ctx))
	}
	return v
}

func pageText(ctx context.Context) string {
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText : ''`))
	return s
}

// text is the text content of the first element matching the CSS selector
// ("" when there is none).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return value(t, ctx, "read "+sel, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel)))
}

// stepTimeout bounds one browser step.
const stepTimeout = 60 * time.Second

// waitText waits until the element's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		got := text(t, ctx, sel)
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q (last %q)\npage: %s", sel, want, got, pageText(ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConsoleInBrowser drives the web console in a real browser against a
// running pipeline: sign in with a reader token, filter events, follow
// live events while the pipeline ingests, open a sealed entry and verify
// its inclusion proof in the page, then audit bundles with the WebAssembly
// verifier with the network off: a valid bundle passes, a tampered one
// fails naming the seqno.
func TestConsoleInBrowser(t *testing.T) {
	ctx := newBrowser(t, 4*time.Minute)

	dir := t.TempDir()
	reader, writer := "reader-"+randomSecret(t), "writer-"+randomSecret(t)
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, fmt.Appendf(nil, `[{"token":%q,"role":"reader"},{"token":%q,"role":"writer"}]`, reader, writer), 0o600); err != nil {
		t.Fatal(err)
	}
	info := startLocal(t, node.UpConfig{
		HTTPListen: "127.0.0.1:0",
		TokensFile: tokens,
		Sealer:     pipeline.SealerConfig{MaxEntries: 8, MaxAge: 200 * time.Millisecond},
		Signer:     pipeline.SignerConfig{ScanInterval: 500 * time.Millisecond},
	})
	nc, err := info.Connect("console-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pc, err := producer.New(nc, producer.Options{PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	appendEv := func(typ string, sev wire.Severity, payload string) uint64 {
		t.Helper()
		c, err := pc.Append(pctx, "auth", producer.Event{Type: typ, Severity: sev, Producer: "sshd", Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		return c.Seqno
	}
	var failed []uint64
	for i := range 12 {
		if i%3 == 0 {
			failed = append(failed, appendEv("login.fail", wire.Warning, fmt.Sprintf(`{"user":"mallory","try":%d}`, i)))
		} else {
			appendEv("login.ok", wire.Info, fmt.Sprintf(`{"user":"alice","n":%d}`, i))
		}
	}
	base := "http://" + info.HTTPAddr

	// Sign in: the streams page asks for a token, a wrong one is refused.
	run(t, ctx, "open the console",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")))
	run(t, ctx, "a wrong token is refused",
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token"),
		chromedp.Click(chromedp.CSS(`form.login button[type="submit"]`)))
	waitText(t, ctx, ".error", "unknown token")
	run(t, ctx, "sign in with the reader token",
		chromedp.SetValue(chromedp.ID("token"), reader),
		chromedp.Click(chromedp.CSS(`form.login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="#/events?stream=auth"]`)))

	// Filter: only the failed logins, oldest first.
	run(t, ctx, "filter events",
		chromedp.Navigate(base+"/ui/#/events?stream=auth&type=login.fail&severity=warning&order=oldest"),
		chromedp.WaitVisible(chromedp.CSS(`#events tbody tr[data-seqno]`)))
	seqnos := value(t, ctx, "read the rows", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#events tbody tr[data-seqno]'), r => r.dataset.seqno + ' ' + r.cells[2].textContent)`))
	var want []string
	for _, s := range failed {
		want = append(want, fmt.Sprintf("%d login.fail", s))
	}
	if strings.Join(seqnos, ",") != strings.Join(want, ",") {
		t.Fatalf("filtered rows %q, want %q", seqnos, want)
	}

	// Follow: events committed while following appear in the table.
	run(t, ctx, "start following",
		chromedp.Click(chromedp.ID("follow")),
		chromedp.WaitVisible(chromedp.CSS(`#follow[aria-pressed="true"]`)))
	time.Sleep(300 * time.Millisecond) // let the follow request reach the server
	var live []uint64
	for i := range 3 {
		live = append(live, appendEv("login.fail", wire.Error, fmt.Sprintf(`{"user":"mallory","live":%d}`, i)))
		appendEv("login.ok", wire.Info, "ignored by the filter")
	}
	for _, s := range live {
		run(t, ctx, fmt.Sprintf("followed entry %d appears", s),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#events tbody tr[data-seqno="%d"]`, s))))
	}
	rows := value(t, ctx, "count rows", chromedp.Evaluate[int](`document.querySelectorAll('#events tbody tr[data-seqno]').length`))
	if rows != len(failed)+len(live) {
		t.Errorf("%d rows after following, want %d (the filter must hold for live events)", rows, len(failed)+len(live))
	}

	// An entry whose segment is sealed and signed: verify its proof here.
	entry := failed[0]
	checkFor(t, 60*time.Second, 200*time.Millisecond, func() error { return sealedAndSigned(base, reader, entry) })
	run(t, ctx, "open an entry and verify its proof",
		chromedp.Navigate(fmt.Sprintf("%s/ui/#/entry/%d", base, entry)),
		chromedp.WaitVisible(chromedp.ID("verify-proof")),
		chromedp.Click(chromedp.ID("verify-proof")),
		chromedp.WaitVisible(chromedp.CSS("#proof-result p")))
	if result := text(t, ctx, "#proof-result"); !strings.Contains(result, "Inclusion proof verified") || strings.Contains(result, "✗") {
		t.Errorf("proof result %q", result)
	}
	if payload := text(t, ctx, "#payload"); !strings.Contains(payload, `"user": "mallory"`) {
		t.Errorf("decoded payload %q", payload)
	}
	if sig := text(t, ctx, "#signature"); !strings.HasPrefix(sig, "signed by ") {
		t.Errorf("signature status %q\npage: %s", sig, pageText(ctx))
	}

	// Audit bundles in the browser with the network off.
	f := bundletest.NewFixture(t)
	trustPath := filepath.Join(dir, "trust.json")
	bundletest.WriteTrust(t, f.TrustEntries, trustPath)
	data, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	doc := bundletest.DecodeDoc(t, data)
	tampered := filepath.Join(dir, "tampered.json")
	var m bundletest.Mutation
	for _, c := range bundletest.Mutations(doc) {
		if c.Name == "entries[4].payload" {
			m = c
		}
	}
	if m.Apply == nil {
		t.Fatal("no entries[4].payload mutation")
	}
	bundletest.WriteMutated(t, data, m, tampered)
	badSeqno := doc["entries"].([]any)[4].(map[string]any)["seqno"].(json.Number)

	run(t, ctx, "open the audit page",
		chromedp.Navigate(base+"/ui/#/audit"),
		chromedp.WaitVisible(chromedp.ID("audit-run")))
	waitText(t, ctx, "#verifier-state", "ready")
	// From here on every request fails: the audit needs none.
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("network: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{
		URLPatterns: []*network.BlockPattern{{URLPattern: "*://*:*/*", Block: true}}}); err != nil {
		t.Fatalf("network off: %v", err)
	}
	if got := value(t, ctx, "the network is off", chromedp.Evaluate[string](`fetch('app.js', {cache: 'no-store'}).then(() => 'reachable', e => 'blocked: ' + e.message)`, chromedp.EvalAwaitPromise)); !strings.HasPrefix(got, "blocked") {
		t.Fatalf("requests still reach the server after blocking: %s", got)
	}

	run(t, ctx, "a valid bundle passes",
		chromedp.SetUploadFiles(chromedp.ID("bundle-file"), []string{f.Path}),
		chromedp.SetUploadFiles(chromedp.ID("trust-file"), []string{trustPath}),
		chromedp.Click(chromedp.ID("audit-run")))
	if head := waitText(t, ctx, "#verdict-head", "S"); !strings.HasPrefix(head, "PASS") {
		t.Fatalf("valid bundle: %q (%s)", head, text(t, ctx, "#audit-result"))
	}
	// The tampered bundle is dropped on the page.
	run(t, ctx, "drop a tampered bundle",
		chromedp.SetUploadFiles(chromedp.ID("bundle-file"), []string{tampered}),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
				const input = document.getElementById('bundle-file');
				const dt = new DataTransfer();
				dt.items.add(input.files[0]);
				input.value = '';
				document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
				return true;
			})()`))
			return err
		}))
	head := waitText(t, ctx, "#verdict-head", "FAIL")
	if !strings.Contains(head, "seqno "+badSeqno.String()) || !strings.Contains(head, "entries[4]") {
		t.Errorf("tampered bundle: head %q, want seqno %s and entries[4] named (error %q)", head, badSeqno, text(t, ctx, "#verdict-error"))
	}
	// Malformed input gets a clear message.
	notBundle := filepath.Join(dir, "not-a-bundle.json")
	if err := os.WriteFile(notBundle, []byte(`{"format":"something-else"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "a malformed bundle is named",
		chromedp.SetUploadFiles(chromedp.ID("bundle-file"), []string{notBundle}),
		chromedp.Click(chromedp.ID("audit-run")))
	waitText(t, ctx, "#verdict-error", "securelog-bundle/v1")
}

// sealedAndSigned asks the query API whether seqno's segment is sealed
// and signed.
func sealedAndSigned(base, token string, seqno uint64) error {
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/entries/%d", base, seqno), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var e struct {
		Segment *struct {
			Signed bool `json:"signed"`
		} `json:"segment"`
		Proof json.RawMessage `json:"proof"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		return fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	if e.Segment == nil || !e.Segment.Signed || len(e.Proof) == 0 || string(e.Proof) == "null" {
		return fmt.Errorf("entry %d not sealed and signed yet", seqno)
	}
	return nil
}
