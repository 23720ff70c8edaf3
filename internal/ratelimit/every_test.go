package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestEvery(t *testing.T) {
	var e Every
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if e.Allow(time.Hour) {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, allowed.Load(), "one event per interval, whatever the concurrency")
	assert.True(t, (&Every{}).Allow(0), "a zero interval allows every event")
}
