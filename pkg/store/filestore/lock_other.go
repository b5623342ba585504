//go:build !unix

package filestore

import "os"

// lockFile is a no-op where flock is unavailable: the caller must ensure
// one writer per file.
func lockFile(*os.File) (unlock func() error, err error) {
	return func() error { return nil }, nil
}
