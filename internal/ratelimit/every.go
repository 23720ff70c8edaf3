// Package ratelimit lets something happen at most once per interval, from
// any number of goroutines, without a lock: log warnings, forced re-reads.
package ratelimit

import (
	"sync/atomic"
	"time"
)

// Every allows one event per interval; the zero value allows the first.
type Every struct {
	last atomic.Int64 // unix nanos of the last allowed event
}

// Allow says whether an event may happen now: the first call does, then
// none until interval has passed since the last one allowed.
func (e *Every) Allow(interval time.Duration) bool {
	now := time.Now().UnixNano()
	last := e.last.Load()
	return (last == 0 || now-last >= int64(interval)) && e.last.CompareAndSwap(last, now)
}
