//go:build race

package main

// raceEnabled: under the race detector wazero's compiler and host calls run
// several times slower, so the corpus is sampled (see corpusStride).
const raceEnabled = true
