package node

import (
	"net/http"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/httpserver/httpservertest"
	"github.com/securelog/securelog/pkg/rpcserver"
)

// Issue 9 item 5 on up's own HTTP listener (store RPC, query API,
// /healthz): the adversarial run's 300 slow-body connections, and as many
// dribbling their headers, are cut once the read timeouts expire (short
// ones here; up's are httpserver's defaults), and the listener serves a
// normal client afterwards.
func TestUpHTTPCutsSlowClients(t *testing.T) {
	info := startUpAuth(t, UpConfig{HTTPListen: "127.0.0.1:0", Tlog: TlogConfig{Off: true},
		HTTP: httpserver.Config{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond}})
	httpservertest.DribbleBodies(t, info.HTTPAddr, "/", 300, 30*time.Second)
	httpservertest.DribbleHeaders(t, info.HTTPAddr, 300, 30*time.Second)
	tok, err := info.Token(rpcserver.RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := rpcPost(t, info.HTTPAddr, tok, `{"method":"secure-log-stream-list","params":null}`); status != http.StatusOK {
		t.Fatalf("after slow clients: %d %s", status, body)
	}
}
