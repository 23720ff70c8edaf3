package vaultclient

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential backoff with full jitter. Not safe for
// concurrent use: each retry loop owns one.
type backoff struct {
	cfg  RetryConfig
	next time.Duration
}

func newBackoff(cfg RetryConfig) *backoff { return &backoff{cfg: cfg, next: cfg.InitialInterval} }

// delay returns the next interval, jittered, and grows the one after it.
func (b *backoff) delay() time.Duration {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(b.next*2, b.cfg.MaxInterval)
	return d
}

// wait sleeps for the next interval (or until ctx ends) and reports whether
// ctx is still alive.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.delay())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *backoff) reset() { b.next = b.cfg.InitialInterval }
