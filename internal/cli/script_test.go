package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envHoldStore); spec != "" {
		holdStore(spec)
		return
	}
	testscript.Main(m, map[string]func(){
		"securelog": func() {
			os.Exit(Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs the CLI scenarios in testdata/script/*.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			e.Setenv("PORT", fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
			return l.Close()
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// waitfor ADDR: wait (up to 20 s) until a TCP listener accepts on ADDR.
			"waitfor": func(ts *testscript.TestScript, neg bool, args []string) {
				deadline := time.Now().Add(20 * time.Second)
				for {
					c, err := net.DialTimeout("tcp", args[0], 200*time.Millisecond)
					if err == nil {
						c.Close()
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("nothing listens on %s: %v", args[0], err)
					}
					time.Sleep(25 * time.Millisecond) // bounded poll, as in SPEC §20 (200 × 25 ms)
				}
			},
		},
	})
}
