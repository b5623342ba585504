//go:build !unix

package witness

import "sync"

// lockMu stands in for flock where it is unavailable: it serialises head
// file writers of this process only.
var lockMu sync.Mutex

// lockPath serialises writers within this process only.
func lockPath(string) (unlock func(), err error) {
	lockMu.Lock()
	return lockMu.Unlock, nil
}
