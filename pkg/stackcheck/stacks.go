package stackcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/filestore"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/store/sqlitestore"
	"github.com/securelog/securelog/pkg/transport"
)

// stackEnv holds what stacks share across runs (the embedded NATS server).
type stackEnv struct {
	opts Options
	dir  string
	ns   *natsserver.Server
	subj atomic.Int64
}

func (e *stackEnv) close() {
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
}

// runOne runs the scenario once on a fresh store of stack with one key.
func (e *stackEnv) runOne(ctx context.Context, stack string, src keySource, name string, refs map[string]*fingerprint) []Cell {
	if src.skip != "" {
		return skipAll(stack, src.name, src.skip)
	}
	if src.setupErr != nil {
		return failAll(stack, src.name, src.setupErr)
	}
	runDir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return failAll(stack, src.name, fmt.Errorf("%w: %v", errSetup, err))
	}
	signer, identity, err := src.prepare(filepath.Join(runDir, "keys"))
	if err != nil {
		return failAll(stack, src.name, fmt.Errorf("keystore setup: %w", err))
	}
	st, config, cleanup, err := e.newStore(ctx, stack, runDir)
	if err != nil {
		return failAll(stack, src.name, fmt.Errorf("stack setup: %w", err))
	}
	defer cleanup()
	sc := &scenario{ctx: ctx, st: st, config: config, signer: signer, identity: identity, alg: src.alg, logger: e.opts.Logger}
	sc.run()
	complete := true
	for _, ch := range Checks[:len(Checks)-1] {
		complete = complete && sc.results[ch] == nil
	}
	switch ref := refs[src.name]; {
	case !complete:
		sc.results[CheckSameAsReference] = errors.New("not compared: the scenario did not complete")
	case ref == nil:
		fp := sc.fp
		refs[src.name] = &fp
		sc.results[CheckSameAsReference] = nil // this stack is the reference
	default:
		sc.results[CheckSameAsReference] = sc.fp.diff(*ref)
	}
	return cellsFor(stack, src.name, sc.results)
}

// newStore returns an uninitialised store of the stack and the config the
// scenario passes to open (SPEC §20's table).
func (e *stackEnv) newStore(ctx context.Context, stack, dir string) (store.Store, string, func(), error) {
	nop := func() {}
	switch stack {
	case StackPebble:
		st := pebblestore.New()
		return st, filepath.Join(dir, "log"), func() { st.Close() }, nil
	case StackSQLite:
		st := sqlitestore.New()
		return st, ":memory:", func() { st.Close() }, nil
	case StackFile:
		st := filestore.New()
		return st, filepath.Join(dir, "audit.jsonl"), func() { st.Close() }, nil
	case StackRemoteHTTP:
		url, stop, err := e.startServeRPC(ctx, dir)
		if err != nil {
			return nil, "", nop, err
		}
		st := remote.NewFromConfig("http", transport.Config{URL: url})
		return st, ":memory:", func() { st.Close(); stop() }, nil
	case StackRemoteNATS:
		return e.natsStore(ctx, dir)
	}
	return nil, "", nop, fmt.Errorf("unknown stack %q", stack)
}

// Poll budget for the serve-rpc subprocess (SPEC §20: 200 × 25 ms).
const (
	pollTries    = 200
	pollInterval = 25 * time.Millisecond
)

// startServeRPC launches `<binary> serve-rpc --listen 127.0.0.1:<free port>`
// with SECURE_LOG_STORE_CONFIG=<dir>/secure-log.db (an SQLite file), polls
// the port, and returns the RPC URL and a stop function (interrupt, then
// kill after 10 s).
func (e *stackEnv) startServeRPC(ctx context.Context, dir string) (string, func(), error) {
	bin := e.opts.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", nil, fmt.Errorf("find the securelog executable for serve-rpc: %w", err)
		}
		bin = exe
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "serve-rpc", "--listen", addr)
	cmd.Env = serveRPCEnv(os.Environ(), filepath.Join(dir, "secure-log.db"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s serve-rpc: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	for i := 0; i < pollTries; i++ {
		select {
		case err := <-exited:
			return "", nil, fmt.Errorf("%s serve-rpc exited before listening on %s (%v): %s", bin, addr, err, out.tail())
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		default:
		}
		c, err := net.DialTimeout("tcp", addr, pollInterval)
		if err == nil {
			c.Close()
			return "http://" + addr, stop, nil
		}
		time.Sleep(pollInterval)
	}
	stop()
	return "", nil, fmt.Errorf("%s serve-rpc did not listen on %s within %v: %s", bin, addr, pollTries*pollInterval, out.tail())
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// natsStore serves a fresh pebble store with rpcserver on a fresh subject
// of the embedded NATS server and returns a remote store over NATS.
func (e *stackEnv) natsStore(ctx context.Context, dir string) (store.Store, string, func(), error) {
	if e.ns == nil {
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
		if err != nil {
			return nil, "", nil, fmt.Errorf("embedded nats-server: %w", err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			ns.Shutdown()
			return nil, "", nil, errors.New("embedded nats-server not ready after 10s")
		}
		e.ns = ns
	}
	backing := pebblestore.New()
	if err := backing.Init(ctx, filepath.Join(dir, "server-log")); err != nil {
		return nil, "", nil, fmt.Errorf("server store: %w", err)
	}
	srv, err := rpcserver.New(backing, rpcserver.Config{}, e.opts.Logger)
	if err != nil {
		backing.Close()
		return nil, "", nil, err
	}
	nc, err := nats.Connect(e.ns.ClientURL(), nats.Name("securelog-stackcheck-server"))
	if err != nil {
		backing.Close()
		return nil, "", nil, fmt.Errorf("connect to embedded nats-server: %w", err)
	}
	subject := fmt.Sprintf("securelog.stackcheck.%d", e.subj.Add(1))
	sub, err := srv.ServeNATS(context.WithoutCancel(ctx), nc, subject)
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		backing.Close()
		return nil, "", nil, fmt.Errorf("serve on NATS: %w", err)
	}
	st := remote.NewFromConfig("nats", transport.Config{NATSURL: e.ns.ClientURL(), Subject: subject})
	cleanup := func() {
		st.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.StopNATS(sctx, sub)
		nc.Close()
		backing.Close()
	}
	return st, ":memory:", cleanup, nil
}

// syncBuffer collects a subprocess's output for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<16 {
		b.buf.Write(p)
	}
	return len(p), nil
}

// tail returns the last lines of output, or "(no output)".
func (b *syncBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	var w bytes.Buffer
	for _, l := range lines {
		io.WriteString(&w, l+"; ")
	}
	return w.String()
}

// serveRPCEnv is the environment of the serve-rpc subprocess: the caller's
// without any SECURELOG_* or SECURE_LOG_* setting, plus the SQLite store. An
// inherited SECURELOG_NATS (the README runs verify-stack beside a running
// `securelog up`) would make the harness's throwaway server join that
// node's store RPC subject, or fail on its authentication.
func serveRPCEnv(environ []string, storeFile string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if strings.HasPrefix(kv, "SECURELOG_") || strings.HasPrefix(kv, "SECURE_LOG_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "SECURE_LOG_STORE_CONFIG="+storeFile)
}
