package vaultclient

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with equal jitter: each wait is
// between half and all of the current interval, so retries spread out but
// never come sooner than half the interval. Not safe for concurrent use:
// each retry loop owns one.
type Backoff struct {
	cfg  RetryConfig
	next time.Duration
}

// NewBackoff starts at cfg.InitialInterval.
func NewBackoff(cfg RetryConfig) *Backoff { return &Backoff{cfg: cfg, next: cfg.InitialInterval} }

// Delay returns the next interval, jittered, and grows the one after it.
func (b *Backoff) Delay() time.Duration {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(b.next*2, b.cfg.MaxInterval)
	return d
}

// Wait sleeps for the next interval (or until ctx ends) and reports whether
// ctx is still alive.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Delay())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Reset starts over at the initial interval.
func (b *Backoff) Reset() { b.next = b.cfg.InitialInterval }
