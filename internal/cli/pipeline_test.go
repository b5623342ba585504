package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// loadPipeline parses args for a command with the given flag groups and
// returns the resulting configuration.
func loadPipeline(t *testing.T, args []string, groups ...string) (pipelineConfig, error) {
	t.Helper()
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, lookupEnv: os.LookupEnv}
	var p pipelineFlags
	var loadErr error
	c := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, _ []string) error {
		if loadErr = a.applyEnv(cmd); loadErr == nil {
			loadErr = p.load(cmd, a)
		}
		return nil
	}}
	p.add(c, groups...)
	c.SetArgs(args)
	c.SetOut(&bytes.Buffer{})
	c.SetErr(&bytes.Buffer{})
	if err := c.Execute(); err != nil {
		return p.cfg, err
	}
	return p.cfg, loadErr
}

// TestPipelineConfigPrecedence: defaults < file < environment < flags.
func TestPipelineConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(file, []byte("[ingester]\nmax_batch = 77\nbatch_wait = \"9ms\"\ndurable = \"from-file\"\n[sealer]\nmax_age = \"3s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECURELOG_BATCH_WAIT", "11ms")
	t.Setenv("SECURELOG_DURABLE", "from-env")
	cfg, err := loadPipeline(t, []string{"--config", file, "--durable", "from-flag"}, "ingester", "sealer")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ingester.MaxBatch != 77 || cfg.Ingester.BatchWait != 11*time.Millisecond || cfg.Ingester.Durable != "from-flag" ||
		cfg.Sealer.MaxAge != 3*time.Second || cfg.Sealer.MaxEntries != 1000 {
		t.Fatalf("precedence wrong: %+v %+v", cfg.Ingester, cfg.Sealer)
	}
}

func TestPipelineConfigRejectsUnknownKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(file, []byte("[ingester]\nmax_btach = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadPipeline(t, []string{"--config", file}, "ingester"); err == nil {
		t.Fatal("unknown key accepted")
	}
}

// TestDeploymentConfigsLoad: the example files in deployments/config parse.
func TestDeploymentConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("../../deployments/config/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	// The shipped files name secrets under /etc/securelog; load them with
	// that directory templated to a temporary one holding 0600 secret files,
	// as an operator's install would.
	etc := t.TempDir()
	secret := regexp.MustCompile(`(?m)^\s*\w+_file\s*=\s*"/etc/securelog/([^"]+)"`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range secret.FindAllStringSubmatch(string(raw), -1) {
			if err := os.WriteFile(filepath.Join(etc, m[1]), []byte("example-secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		templated := filepath.Join(etc, filepath.Base(f))
		if err := os.WriteFile(templated, []byte(strings.ReplaceAll(string(raw), "/etc/securelog/", etc+"/")), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadPipeline(t, []string{"--config", templated}, "jetstream", "ingester", "sealer", "signer", "up"); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestAckWaitDeprecated: [ingester] ack_wait has no effect since the
// consumer acknowledges nothing; a configuration naming it still loads,
// with a warning instead of silence.
func TestAckWaitDeprecated(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "ingester.toml")
	if err := os.WriteFile(cfg, []byte("[ingester]\nack_wait = \"1m\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, e := runCLI(t, "ingester", "--config", cfg, "--store", "memory:x", "--nats", "nats://127.0.0.1:1")
	if !strings.Contains(e, "ack_wait is deprecated") || strings.Contains(e, "unknown keys") {
		t.Fatalf("ack_wait: %s", e)
	}
}

// TestPebbleTuningConfig: the ingester store's pebble sizes come from the
// file, the environment and the flags (MiB), with node's defaults.
func TestPebbleTuningConfig(t *testing.T) {
	var p pipelineFlags
	p.cfg = defaultPipelineConfig()
	if got := p.pebbleTuning(); got.CacheSize != 64<<20 || got.MemTableSize != 64<<20 || got.MemTables != 4 {
		t.Fatalf("defaults: %+v", got)
	}
	file := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(file, []byte("[store]\npebble_memtable_mib = 8\npebble_cache_mib = 16\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECURELOG_PEBBLE_CACHE_MIB", "32")
	cfg, err := loadPipeline(t, []string{"--config", file, "--pebble-memtables", "3"}, "ingester")
	if err != nil {
		t.Fatal(err)
	}
	p.cfg = cfg
	if got := p.pebbleTuning(); got.CacheSize != 32<<20 || got.MemTableSize != 8<<20 || got.MemTables != 3 {
		t.Fatalf("file < env < flags: %+v", got)
	}
}
