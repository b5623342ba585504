package bundle_test

import (
	"context"
	"testing"

	"github.com/securelog/securelog/pkg/bundle"
)

// auditFile opens and audits a bundle file.
func auditFile(t testing.TB, path string, opts bundle.AuditOptions) (bundle.AuditReport, error) {
	t.Helper()
	r, err := bundle.Open(path)
	if err != nil {
		return bundle.AuditReport{}, err
	}
	defer r.Close()
	return bundle.Audit(context.Background(), r, opts)
}
