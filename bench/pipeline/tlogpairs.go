package main

import (
	"flag"
	"fmt"
)

// Tree cost (issue 11: the transparency tree may cost at most 10 % of
// committed throughput): -tlog-pairs N runs the closed loop N times with
// the tree on and N times with it off, interleaved in pairs whose order
// alternates (on, off; off, on; …) so that drift of the machine's load
// does not favour one side, each run -tlog-events long (a run of ~1 s is
// mostly noise), and prints every pair's committed/s and ratio, the
// process CPU per event of both (comparable when throughput is not) and
// the medians.
var (
	tlogPairs  = flag.Int("tlog-pairs", 0, "run N interleaved pairs of closed loops with the transparency tree on and off and print each pair's ratio and the median (issue 11)")
	tlogEvents = flag.Int("tlog-events", 100_000, "with -tlog-pairs (and -table): events per closed-loop run")
)

// tlogProfile, when set (-cpuprofile with -tlog-pairs), names the CPU
// profiles of the pairs' runs: <name>.on and <name>.off for pair 1,
// <name>.on.N and <name>.off.N for pair N.
var tlogProfile string

// tlogPair is one pair's figures.
type tlogPair struct {
	on, off       float64 // committed entries/s
	cpuOn, cpuOff float64 // process CPU µs per event during the closed loop
	batchOn       float64 // mean ingester batch (events) with the tree on
	batchOff      float64
	load          string // 1-minute load average after the pair
}

func (p tlogPair) ratio() float64 { return p.on / p.off }

// runTlogPair measures the closed loop with the tree on and off (off
// first when offFirst). Checkpoint samples are skipped.
func runTlogPair(o options, events, pair int, offFirst bool) (tlogPair, error) {
	o.samples, o.events = 0, events
	var p tlogPair
	for i := range 2 {
		off := (i == 0) == offFirst
		oo := o
		oo.tlogOff = off
		stop := func() {}
		if tlogProfile != "" {
			side := map[bool]string{false: ".on", true: ".off"}[off]
			stop = startProfiles(tlogProfile+side, "", pair)
		}
		r, err := runClosed(oo)
		stop()
		if err != nil {
			return p, fmt.Errorf("closed loop, tree off=%v: %w", off, err)
		}
		cpu := usPer(r.loopCPU, events)
		if off {
			p.off, p.cpuOff, p.batchOff = r.rate, cpu, r.avgBatch
		} else {
			p.on, p.cpuOn, p.batchOn = r.rate, cpu, r.avgBatch
		}
	}
	p.load = loadAvg()
	return p, nil
}

// runTlogPairs runs n pairs (-tlog-pairs) and prints them and the medians.
func runTlogPairs(o options, n, events int) ([]tlogPair, error) {
	var ps []tlogPair
	for i := range n {
		p, err := runTlogPair(o, events, i+1, i%2 == 1)
		if err != nil {
			return ps, err
		}
		ps = append(ps, p)
		order := "on, off"
		if i%2 == 1 {
			order = "off, on"
		}
		fmt.Printf("tree pair %d (%s; %d events each): committed on %9.0f, off %9.0f entries/s: ratio %.3f; CPU on %.1f, off %.1f µs/event (off ÷ on %.3f); mean batch %.0f / %.0f; load %s\n",
			i+1, order, events, p.on, p.off, p.ratio(), p.cpuOn, p.cpuOff, p.cpuOff/p.cpuOn, p.batchOn, p.batchOff, p.load)
	}
	printTlogPairs(ps)
	return ps, nil
}

func printTlogPairs(ps []tlogPair) {
	if len(ps) == 0 {
		return
	}
	ratios := mapf(ps, tlogPair.ratio)
	on := median(mapf(ps, func(p tlogPair) float64 { return p.cpuOn }))
	off := median(mapf(ps, func(p tlogPair) float64 { return p.cpuOff }))
	fmt.Printf("tree on ÷ off, median of %d pairs: committed %.3f (pairs: %s); on %.0f, off %.0f entries/s\n",
		len(ps), median(ratios), join(ratios, f3), median(mapf(ps, func(p tlogPair) float64 { return p.on })), median(mapf(ps, func(p tlogPair) float64 { return p.off })))
	// On a loaded machine a run's rate follows the CPU share the OS gives
	// the process; CPU per event does not. Where the pipeline is CPU-bound
	// (one process on 2 cores), off ÷ on CPU is the rate ratio to expect.
	fmt.Printf("tree process CPU per event, medians: on %.1f µs, off %.1f µs (off ÷ on %.3f: the rate ratio where CPU-bound)\n", on, off, off/on)
}

func f3(v float64) string { return fmt.Sprintf("%.3f", v) }

func join(xs []float64, f func(float64) string) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += f(x)
	}
	return s
}
