//go:build !linux

package tlog

import "time"

// threadCPU is not measured off Linux (CPU-µs/op reads 0).
func threadCPU() time.Duration { return 0 }

// processCPU is not measured off Linux.
func processCPU() time.Duration { return 0 }
