package server

import (
	"sync"

	"golang.org/x/time/rate"
)

// maxTrackedClients bounds the per-client budgets kept; beyond it they
// start over (an attacker would need that many addresses to reset its own).
const maxTrackedClients = 10000

// clientLimiters gives each client address its own lookup budget.
type clientLimiters struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newClientLimiters(perSecond float64, burst int) *clientLimiters {
	return &clientLimiters{rate: rate.Limit(perSecond), burst: max(1, burst), m: map[string]*rate.Limiter{}}
}

// allow spends one lookup of client's budget, if it has one left.
func (c *clientLimiters) allow(client string) bool {
	c.mu.Lock()
	l, ok := c.m[client]
	if !ok {
		if len(c.m) >= maxTrackedClients {
			clear(c.m)
		}
		l = rate.NewLimiter(c.rate, c.burst)
		c.m[client] = l
	}
	c.mu.Unlock()
	return l.Allow()
}
