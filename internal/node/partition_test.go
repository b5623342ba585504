package node

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/securelog/securelog/pkg/wire"
)

// /healthz and /metrics say which partition answered (issue 14 item 5).
func TestHTTPNamesPartition(t *testing.T) {
	p := wire.MustPartition("p2")
	h := withPartitionHeader(HTTPHandler(http.NotFoundHandler(), func() bool { return true }, partitionInfo(p)), p)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Header().Get(PartitionHeader) != "p2" {
		t.Fatalf("healthz: %d, partition header %q", rec.Code, rec.Header().Get(PartitionHeader))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `securelog_partition_info{partition="p2"} 1`) {
		t.Fatalf("metrics lack the partition:\n%s", rec.Body.String())
	}
	if n := testutil.CollectAndCount(partitionInfo(wire.Partition{}), "securelog_partition_info"); n != 1 {
		t.Fatalf("default partition info: %d series", n)
	}
}
