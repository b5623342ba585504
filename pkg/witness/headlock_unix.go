//go:build unix

package witness

import (
	"os"
	"syscall"
)

// lockPath takes an exclusive flock(2) on path (created 0600 if missing),
// blocking until it is free. flock locks belong to the open file
// description, so they exclude other processes and other opens in this
// process alike.
func lockPath(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
