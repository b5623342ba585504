// Package httpservertest holds test clients that misbehave on purpose, to
// check the limits of package httpserver on every HTTP listener.
package httpservertest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// DribbleBodies opens n connections to addr (host:port), sends on each a
// POST to path announcing a 1 MiB body, and then dribbles that body one
// byte every 20 ms. It waits until the server has closed every connection,
// and fails t if some are still open after within (a bound far above the
// server's read timeout, not a measurement). It returns how many
// connections the server closed.
func DribbleBodies(t testing.TB, addr, path string, n int, within time.Duration) int {
	t.Helper()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: slow.test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, 1<<20)
	return dribble(t, addr, n, within, head, []byte("["))
}

// DribbleHeaders is DribbleBodies for the request headers: each connection
// sends a request line and then one header byte every 20 ms, never ending
// the headers.
func DribbleHeaders(t testing.TB, addr string, n int, within time.Duration) int {
	t.Helper()
	return dribble(t, addr, n, within, "GET /healthz HTTP/1.1\r\nHost: slow.test\r\nX-Slow: ", []byte("a"))
}

func dribble(t testing.TB, addr string, n int, within time.Duration, head string, unit []byte) int {
	t.Helper()
	var wg sync.WaitGroup
	closed := make(chan struct{}, n)
	stop := make(chan struct{})
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatalf("write request head: %v", err)
		}
		// Writer: one unit every 20 ms until the server closes or the test ends.
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write(unit); err != nil {
						return
					}
				}
			}
		})
		// Reader: the server's answer (if any) and then EOF or a reset.
		wg.Go(func() {
			_, _ = io.Copy(io.Discard, c)
			closed <- struct{}{}
		})
	}
	got := 0
	deadline := time.After(within)
wait:
	for got < n {
		select {
		case <-closed:
			got++
		case <-deadline:
			break wait
		}
	}
	close(stop)
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
	if got < n {
		t.Errorf("%d of %d slow connections to %s still open after %v", n-got, n, addr, within)
	}
	return got
}
