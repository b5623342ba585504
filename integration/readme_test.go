package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The README runner: every ```sh block of README.md and docs/*.md runs as
// written, in order, one working directory per file (so later blocks see the
// files earlier ones wrote, as for a reader following the text), with the
// securelog binary on PATH. An HTML comment on the line before a block
// changes how it runs:
//
//	<!-- readme-test: setup -->  the install-and-start command: run from the
//	                            repository root (it uses ./cmd/securelog) with
//	                            GOBIN in a temporary directory; it must bring
//	                            `securelog up` to life; it is stopped at the end.
//	<!-- readme-test: up -->     needs `securelog up` running (started from the
//	                            test binary if no setup block did).
//	<!-- readme-test: ci -->     the test command: must be exactly the command
//	                            .ci/run runs; not run here (it would recurse).
//
// `up` runs with its data in <workdir>/securelog-data (where the README
// says it is when the commands run in the directory `up` started in) and
// on free ports instead of 4222 and 8080, so the test never collides with a
// real deployment; blocks get the same ports (127.0.0.1:4222 and
// 127.0.0.1:8080 in their text are replaced, SECURELOG_NATS is set).
// Nothing else is substituted: a block with a placeholder fails.

// docBlock is one fenced code block.
type docBlock struct {
	file, lang, directive, text string
	line                        int
}

var directiveRe = regexp.MustCompile(`^<!--\s*readme-test:\s*([a-z-]+)\s*-->$`)

// docBlocks returns the fenced blocks of a Markdown file.
func docBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []docBlock
	var cur *docBlock
	prev := ""
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &docBlock{file: path, lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: i + 1}
			if m := directiveRe.FindStringSubmatch(prev); m != nil {
				cur.directive = m[1]
			}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
		if trimmed != "" {
			prev = trimmed
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated code block", path, cur.line)
	}
	return out
}

// upProc is a running `securelog up` (possibly behind the README's setup
// command) in its own process group.
type upProc struct {
	cmd       *exec.Cmd
	out       *syncBuffer
	natsPort  int
	httpPort  int
	gobin     string
	waitErr   chan error
	stopOnce  sync.Once
	stopError error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startUp runs script with bash (the setup block, or `securelog up`) in dir
// and waits until up's NATS and HTTP ports accept connections.
func startUp(t *testing.T, dir, workdir, script string, gobin string) *upProc {
	t.Helper()
	u := &upProc{natsPort: freePort(t), httpPort: freePort(t), gobin: gobin, out: &syncBuffer{}, waitErr: make(chan error, 1)}
	u.cmd = exec.Command("bash", "-euo", "pipefail", "-c", script)
	u.cmd.Dir = dir
	u.cmd.Env = append(os.Environ(),
		"GOBIN="+gobin,
		"PATH="+gobin+string(os.PathListSeparator)+filepath.Dir(securelogBin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SECURELOG_DATA="+filepath.Join(workdir, "securelog-data"),
		fmt.Sprintf("SECURELOG_LISTEN_NATS=127.0.0.1:%d", u.natsPort),
		fmt.Sprintf("SECURELOG_LISTEN=127.0.0.1:%d", u.httpPort),
	)
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	u.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := u.cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", script, err)
	}
	go func() { u.waitErr <- u.cmd.Wait() }()
	t.Cleanup(u.stop)
	// The first `go install` may compile for minutes on a cold cache.
	deadline := time.Now().Add(5 * time.Minute)
	for _, port := range []int{u.natsPort, u.httpPort} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-u.waitErr:
				t.Fatalf("%q exited before listening on %s: %v\n%s", script, addr, err, u.out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q: nothing listens on %s after 5 minutes\n%s", script, addr, u.out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return u
}

// stop ends the process group: SIGTERM, then SIGKILL after 15 s.
func (u *upProc) stop() {
	u.stopOnce.Do(func() {
		pgid := u.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-u.waitErr:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-u.waitErr
		}
	})
}

// blockEnv returns the environment and text of a block to run.
func (u *upProc) rewrite(text string) string {
	if u == nil {
		return text
	}
	text = strings.ReplaceAll(text, "127.0.0.1:4222", fmt.Sprintf("127.0.0.1:%d", u.natsPort))
	return strings.ReplaceAll(text, "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", u.httpPort))
}

// ciTestCommand returns the test command line of .ci/run.
func ciTestCommand(t *testing.T, root string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "go test") {
			return line
		}
	}
	t.Fatal(".ci/run runs no `go test` command")
	return ""
}

// stripComment drops a trailing shell comment of a one-line command.
func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// TestReadmeBlocks runs the shell blocks of README.md and docs/*.md.
func TestReadmeBlocks(t *testing.T) {
	root := repoRoot(t)
	files := []string{filepath.Join(root, "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, more...)
	total := 0
	for _, file := range files {
		rel, _ := filepath.Rel(root, file)
		t.Run(rel, func(t *testing.T) {
			workdir := t.TempDir()
			gobin := filepath.Join(t.TempDir(), "bin")
			var up *upProc
			for _, b := range docBlocks(t, file) {
				where := fmt.Sprintf("%s:%d", rel, b.line)
				switch b.lang {
				case "sh":
				case "bash", "shell", "console", "":
					t.Errorf("%s: code block with language %q: write commands as ```sh so they are tested, anything else with a language such as ```text", where, b.lang)
					continue
				default:
					if b.directive != "" {
						t.Errorf("%s: readme-test directive on a %q block", where, b.lang)
					}
					continue
				}
				total++
				switch b.directive {
				case "ci":
					want := ciTestCommand(t, root)
					if got := stripComment(strings.TrimSpace(b.text)); got != want {
						t.Errorf("%s: test command %q is not what .ci/run runs (%q)", where, got, want)
					}
					continue
				case "setup":
					if up != nil {
						t.Fatalf("%s: a second setup block", where)
					}
					t.Logf("%s: running the setup command (go install may take a while)", where)
					up = startUp(t, root, workdir, b.text, gobin)
					if !strings.Contains(up.out.String(), "securelog is up") {
						// Ports listen a moment before the banner is printed.
						time.Sleep(2 * time.Second)
					}
					t.Logf("%s: up is running\n%s", where, up.out.String())
					continue
				case "up":
					if up == nil {
						up = startUp(t, workdir, workdir, "securelog up", gobin)
					}
				case "":
				default:
					t.Errorf("%s: unknown readme-test directive %q", where, b.directive)
					continue
				}
				runBlock(t, where, workdir, gobin, up, b.text)
			}
		})
	}
	if total < 5 {
		t.Errorf("found only %d sh blocks in README.md and docs/*.md", total)
	}
}

// runBlock runs one block with bash -euo pipefail in workdir.
func runBlock(t *testing.T, where, workdir, gobin string, up *upProc, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	script := up.rewrite(text)
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = workdir
	cmd.Env = append(os.Environ(),
		"PATH="+gobin+string(os.PathListSeparator)+filepath.Dir(securelogBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if up != nil {
		cmd.Env = append(cmd.Env, fmt.Sprintf("SECURELOG_NATS=nats://127.0.0.1:%d", up.natsPort))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		upLog := ""
		if up != nil {
			upLog = "\n--- securelog up ---\n" + up.out.String()
		}
		t.Fatalf("%s: block failed: %v\n--- block ---\n%s--- output ---\n%s%s", where, err, script, out, upLog)
	}
	t.Logf("%s: ok\n%s", where, out)
}
