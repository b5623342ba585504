package cli

import (
	"strings"
	"testing"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/secretfile"
)

// TestPartitionsCommand: add, assign, list; an unknown partition names the
// known ones and a conflicting assignment names the owner (issue 14, bad
// input), both exit 2.
func TestPartitionsCommand(t *testing.T) {
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := ns.ClientURL()
	clearEnv(t, "SECURELOG_NATS", "SECURELOG_PARTITION", "SECURELOG_CONFIG")
	if out := mustCLI(t, "--nats", url, "partitions", "list"); !strings.HasPrefix(out, "default\t0 stream(s)") {
		t.Fatalf("list without a map:\n%s", out)
	}
	code, _, stderr := runCLI(t, "--nats", url, "partitions", "assign", "alpha", "p1")
	if code != 2 || !strings.Contains(stderr, `unknown partition "p1"`) || !strings.Contains(stderr, "known partitions: default") {
		t.Fatalf("assign to unknown partition: exit %d\n%s", code, stderr)
	}
	if out := mustCLI(t, "--nats", url, "partitions", "add", "p1"); !strings.Contains(out, "partition p1 added") {
		t.Fatalf("add: %s", out)
	}
	mustCLI(t, "--nats", url, "partitions", "assign", "alpha", "p1")
	mustCLI(t, "--nats", url, "partitions", "assign", "alpha", "p1") // idempotent
	mustCLI(t, "--nats", url, "partitions", "assign", "beta", "default")
	code, _, stderr = runCLI(t, "--nats", url, "partitions", "assign", "alpha", "default")
	if code != 2 || !strings.Contains(stderr, `stream "alpha" belongs to partition "p1"`) {
		t.Fatalf("conflicting assignment: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runCLI(t, "--nats", url, "partitions", "add", "bad.name")
	if code != 2 || !strings.Contains(stderr, "bad.name") {
		t.Fatalf("bad name: exit %d\n%s", code, stderr)
	}
	out := mustCLI(t, "--nats", url, "partitions", "list")
	if !strings.Contains(out, "default\t1 stream(s) (and every unassigned stream)\tbeta\n") || !strings.Contains(out, "p1\t1 stream(s)\talpha\n") {
		t.Fatalf("list:\n%s", out)
	}
	if out := mustCLI(t, "--nats", url, "--json", "partitions", "list"); !strings.Contains(out, `{"name":"p1","streams":["alpha"]}`) {
		t.Fatalf("list --json:\n%s", out)
	}
}

// TestPartitionsCommandAuthenticated: against an authenticated server
// (securelog up's default), `partitions` uses the data directory's
// operator credentials like the other client commands.
func TestPartitionsCommandAuthenticated(t *testing.T) {
	dataDir := t.TempDir()
	creds, _, err := node.EnsureCredentials(dataDir, secretfile.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), NkeyUsers: creds.NkeyUsers()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	clearEnv(t, "SECURELOG_NATS", "SECURELOG_PARTITION", "SECURELOG_CONFIG", "SECURELOG_DATA_DIR", "SECURELOG_CREDS")
	args := []string{"--nats", ns.ClientURL(), "--data-dir", dataDir, "partitions"}
	if out := mustCLI(t, append(args, "add", "p1")...); !strings.Contains(out, "partition p1 added") {
		t.Fatalf("add: %s", out)
	}
	mustCLI(t, append(args, "assign", "alpha", "p1")...)
	if out := mustCLI(t, append(args, "list")...); !strings.Contains(out, "p1\t1 stream(s)\talpha\n") {
		t.Fatalf("list:\n%s", out)
	}
}
