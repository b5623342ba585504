package tlog

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPU is the CPU time of the calling goroutine's thread (which it
// locks to its thread on first use): work done for the caller, without
// the process's background goroutines.
func threadCPU() time.Duration {
	runtime.LockOSThread()
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time of the whole process (every thread: the
// store's background work too).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
