package integration

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/wire"
)

// deployCluster is the 3-node NATS cluster of deployments/nats, started
// in-process from the shipped files with only ports and directories changed.
type deployCluster struct {
	servers   []*server.Server
	urls      []string          // client URL per node
	passwords map[string]string // user → password (set in the environment)
}

// natsUsers are the users of deployments/nats/auth.conf.
var natsUsers = []string{"producer", "ingester", "sealer", "signer", "witness", "auditor"}

// replaceExactly replaces old by new in s and fails unless old occurs
// exactly n times, so a change to the shipped file cannot silently leave a
// production value in the test.
func replaceExactly(t *testing.T, what, s, old, new string, n int) string {
	t.Helper()
	if c := strings.Count(s, old); c != n {
		t.Fatalf("%s: %q occurs %d times, want %d (update the templating in this test)", what, old, c, n)
	}
	return strings.ReplaceAll(s, old, new)
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startDeployCluster starts deployments/nats/nats-{1,2,3}.conf in-process.
// The passwords are random and passed through the environment, as the
// shipped files expect.
func startDeployCluster(t *testing.T) *deployCluster {
	t.Helper()
	root := repoRoot(t)
	dc := &deployCluster{passwords: map[string]string{}}
	for _, u := range natsUsers {
		dc.passwords[u] = randomSecret(t)
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", dc.passwords[u])
	}
	auth, err := os.ReadFile(filepath.Join(root, "deployments", "nats", "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var client, routes, monitor []int
	for range 3 {
		client, routes, monitor = append(client, freePort(t)), append(routes, freePort(t)), append(monitor, freePort(t))
	}
	var opts []*server.Options
	for i := range 3 {
		name := fmt.Sprintf("nats-%d.conf", i+1)
		b, err := os.ReadFile(filepath.Join(root, "deployments", "nats", name))
		if err != nil {
			t.Fatal(err)
		}
		conf := string(b)
		conf = replaceExactly(t, name, conf, "listen: 0.0.0.0:4222", fmt.Sprintf("listen: 127.0.0.1:%d", client[i]), 1)
		conf = replaceExactly(t, name, conf, "http: 127.0.0.1:8222", fmt.Sprintf("http: 127.0.0.1:%d", monitor[i]), 1)
		conf = replaceExactly(t, name, conf, "listen: 0.0.0.0:6222", fmt.Sprintf("listen: 127.0.0.1:%d", routes[i]), 1)
		for j := range 3 {
			conf = replaceExactly(t, name, conf, fmt.Sprintf("nats-route://nats-%d:6222", j+1), fmt.Sprintf("nats-route://127.0.0.1:%d", routes[j]), 1)
		}
		dir := t.TempDir()
		conf = replaceExactly(t, name, conf, "store_dir: /var/lib/nats/jetstream", "store_dir: "+filepath.Join(dir, "jetstream"), 1)
		if err := os.WriteFile(filepath.Join(dir, "auth.conf"), auth, 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o.NoSigs = true
		opts = append(opts, o)
		dc.urls = append(dc.urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	for i, o := range opts {
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("nats-%d: %v", i+1, err)
		}
		s.SetLoggerV2(testNATSLogger{t}, false, false, false)
		go s.Start()
		dc.servers = append(dc.servers, s)
		t.Cleanup(s.Shutdown)
	}
	for i, s := range dc.servers {
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("nats-%d not ready", i+1)
		}
	}
	// Wait until JetStream has a meta leader (the R3 streams need it).
	deadline := time.Now().Add(60 * time.Second)
	for {
		leader := false
		for _, s := range dc.servers {
			if s.JetStreamIsLeader() {
				leader = true
			}
		}
		if leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader after 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return dc
}

// url returns the cluster's URLs, comma separated, with user:password of
// user when user is not empty.
func (dc *deployCluster) url(user string) string {
	out := make([]string, len(dc.urls))
	for i, u := range dc.urls {
		if user != "" {
			u = strings.Replace(u, "nats://", "nats://"+user+":"+dc.passwords[user]+"@", 1)
		}
		out[i] = u
	}
	return strings.Join(out, ",")
}

// connect connects as user.
func (dc *deployCluster) connect(t *testing.T, user string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(strings.Join(dc.urls, ","), nats.UserInfo(user, dc.passwords[user]))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// testNATSLogger sends the servers' warnings and errors to the test log.
type testNATSLogger struct{ t *testing.T }

func (l testNATSLogger) Noticef(string, ...any) {}
func (l testNATSLogger) Debugf(string, ...any)  {}
func (l testNATSLogger) Tracef(string, ...any)  {}
func (l testNATSLogger) Warnf(format string, v ...any) {
	l.t.Logf("nats warning: "+format, v...)
}
func (l testNATSLogger) Errorf(format string, v ...any) { l.t.Logf("nats error: "+format, v...) }
func (l testNATSLogger) Fatalf(format string, v ...any) { l.t.Logf("nats fatal: "+format, v...) }

// subscribeDenied reports whether user is refused a subscription to
// subject: the server answers with a permissions violation.
func (dc *deployCluster) subscribeDenied(t *testing.T, user, subject string) bool {
	t.Helper()
	errs := make(chan error, 4)
	nc, err := nats.Connect(strings.Join(dc.urls, ","), nats.UserInfo(user, dc.passwords[user]),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync(subject); err != nil {
		return true
	}
	if err := nc.Flush(); err != nil {
		return true
	}
	select {
	case err := <-errs:
		return strings.Contains(strings.ToLower(err.Error()), "permissions violation")
	case <-time.After(2 * time.Second):
		return false
	}
}

// TestDeploymentNATSPermissions starts the shipped cluster configuration
// and checks its users: every user can connect with the password from the
// environment (the $VARs are not quoted), a wrong password is refused, and
// only the processes that serve a request subject may subscribe to it, so
// no other user can read requests (and their bearer-token headers).
func TestDeploymentNATSPermissions(t *testing.T) {
	dc := startDeployCluster(t)
	for _, u := range natsUsers {
		dc.connect(t, u)
	}
	if _, err := nats.Connect(dc.urls[0], nats.UserInfo("producer", "$PRODUCER_PASSWORD")); err == nil {
		t.Fatal("the literal string $PRODUCER_PASSWORD is accepted as a password")
	}
	if _, err := nats.Connect(dc.urls[0]); err == nil {
		t.Fatal("anonymous connection accepted")
	}
	requests := []string{"securelog.rpc", "securelog.rpc.read", "securelog.append.default", "securelog.close.default", "securelog.lookup.commit", "securelog.witness.submit",
		"securelog.tlog.latest", "securelog.tlog.head", "securelog.tlog.tile",
		"securelog.p.p2.rpc", "securelog.p.p2.rpc.read", "securelog.p.p2.append.default", "securelog.p.p2.close.default", "securelog.p.p2.lookup.commit",
		"securelog.p.p2.tlog.latest", "securelog.p.p2.tlog.head", "securelog.p.p2.tlog.tile"}
	// The signer's checkpointer answers the transparency log's latest
	// checkpoint (securelog.tlog.latest).
	servers := map[string]map[string]bool{"witness": {"securelog.witness.submit": true}, "ingester": {},
		"signer": {"securelog.tlog.latest": true, "securelog.p.p2.tlog.latest": true}}
	for _, r := range requests {
		if r != "securelog.witness.submit" {
			servers["ingester"][r] = true
		}
	}
	for _, u := range natsUsers {
		for _, subj := range requests {
			denied := dc.subscribeDenied(t, u, subj)
			if want := !servers[u][subj]; denied != want {
				t.Errorf("user %s subscribing to %s: denied=%v, want %v", u, subj, denied, want)
			}
		}
	}
}

// subjectCovers reports whether the NATS subject pattern covers the
// literal subject sub ("*" one token, ">" one or more).
func subjectCovers(pattern, sub string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(sub, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

// anyCovers reports whether one of patterns covers the literal sub.
func anyCovers(patterns []string, sub string) bool {
	for _, p := range patterns {
		if subjectCovers(p, sub) {
			return true
		}
	}
	return false
}

// concrete is a literal subject the pattern stands for in the shipped
// deployment: a JetStream consumer subject of an announcement stream
// names the shipped worker's durable (securelog-sealer, securelog-signer-p2,
// ...); other wildcards become "x".
func concrete(pattern string) string {
	toks := strings.Split(pattern, ".")
	for i, tok := range toks {
		if tok != ">" && tok != "*" {
			continue
		}
		v := "x"
		if i > 0 && (strings.HasPrefix(pattern, "$JS.API.CONSUMER.") || strings.HasPrefix(pattern, "$JS.ACK.")) {
			stream := toks[i-1]
			for _, w := range []struct{ prefix, durable string }{{"SECURELOG_APPENDED", "securelog-sealer"}, {"SECURELOG_SEALED", "securelog-signer"}} {
				if rest, ok := strings.CutPrefix(stream, w.prefix); ok {
					v = w.durable + strings.ReplaceAll(rest, "_", "-")
				}
			}
		}
		// CREATE and ACK subjects go on after the consumer's name
		// (filter; delivery numbers), INFO and MSG.NEXT end with it.
		if tok == ">" && v != "x" && (strings.HasPrefix(pattern, "$JS.API.CONSUMER.CREATE.") || strings.HasPrefix(pattern, "$JS.ACK.")) {
			v += ".x"
		}
		toks[i] = v
	}
	return strings.Join(toks, ".")
}

// TestDeploymentAuthCoversTwoPartitions (issue 14): deployments/nats/
// auth.conf gives every user what its role needs in both partitions of
// deployments/README.md's two-partition example (the default partition
// and p2) as node.RolePermissions computes it for `securelog up`: every
// subject the role publishes or subscribes to (with the shipped workers'
// durable names) is allowed and not denied. It failed on the file that
// showed only p2's consumer lines: p2's producer stream info, and the
// transparency log's subjects (tlog) of both partitions, were missing.
func TestDeploymentAuthCoversTwoPartitions(t *testing.T) {
	for _, u := range natsUsers {
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", "x")
	}
	opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), "deployments", "nats", "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*server.Permissions{}
	for _, u := range opts.Users {
		users[u.Username] = u.Permissions
	}
	roles := map[string]string{"producer": node.RoleProducer, "ingester": node.RoleIngester, "sealer": node.RoleSealer,
		"signer": node.RoleSigner, "witness": node.RoleWitness, "auditor": node.RoleReader}
	for _, u := range natsUsers {
		have := users[u]
		if have == nil {
			t.Errorf("auth.conf has no permissions for user %s", u)
			continue
		}
		want := node.RolePermissions(roles[u], wire.Partition{}, wire.MustPartition("p2"))
		for _, c := range []struct {
			what       string
			want, have *server.SubjectPermission
		}{{"publish", want.Publish, have.Publish}, {"subscribe", want.Subscribe, have.Subscribe}} {
			for _, pattern := range c.want.Allow {
				sub := concrete(pattern)
				if c.have == nil || !anyCovers(c.have.Allow, sub) {
					t.Errorf("user %s may not %s %s", u, c.what, sub)
				} else if anyCovers(c.have.Deny, sub) {
					t.Errorf("user %s is denied to %s %s", u, c.what, sub)
				}
			}
		}
	}
}
