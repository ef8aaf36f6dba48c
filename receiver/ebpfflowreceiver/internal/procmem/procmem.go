// Package procmem keeps the collector process's resident memory near what an
// agent uses at run time: a default garbage-collector target, and the pages
// of the executable that only start-up touched given back to the kernel.
//
// Measured with 10k active flows (make bench, RSS row): the heap holds about
// 30 MB live at a flush, so the default GOGC=100 let anon RSS reach ~64 MB
// where GOGC=50 keeps ~50 MB for one more GC cycle per flush (~15 ms CPU).
// Of the ~50 MB of the 87 MB binary the kernel maps in by the end of
// start-up (initialisation of every component the distribution carries,
// config parsing, fault-around of 64 KB around each touched page), about
// 16 MB are touched again once the pipelines run.
package procmem

import (
	"os"
	"runtime/debug"
	"strconv"
)

// DefaultGCPercent is the GOGC applied when the environment sets none.
const DefaultGCPercent = 50

// SetGCPercent sets DefaultGCPercent unless GOGC is set in the environment
// (an operator's choice wins). It returns the GOGC in effect.
func SetGCPercent() string {
	if v, ok := os.LookupEnv("GOGC"); ok {
		return v
	}
	debug.SetGCPercent(DefaultGCPercent)
	return strconv.Itoa(DefaultGCPercent)
}
