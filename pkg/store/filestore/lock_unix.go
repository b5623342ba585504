//go:build unix

package filestore

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on the log file so that a second
// Store (in this or another process) cannot append with a stale model.
func lockFile(f *os.File) (unlock func() error, err error) {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, err
	}
	return func() error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }, nil
}
