package bundle

// SetParallelScan makes the first pass over the entries array run on
// workers cores from minSize bytes (math.MaxInt64: never) and returns the
// function that restores the defaults.
func SetParallelScan(minSize int64, workers int) (restore func()) {
	oldMin, oldWorkers := parallelScanMin, scanWorkers
	parallelScanMin, scanWorkers = minSize, func() int { return workers }
	return func() { parallelScanMin, scanWorkers = oldMin, oldWorkers }
}

// Joins is how many pieces of its parallel first pass r joined.
func (r *Reader) Joins() int { return r.joins }
