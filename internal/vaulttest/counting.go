package vaulttest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CountingProxy is a loopback HTTP reverse proxy in front of a server. It
// counts the requests it forwards by API path (what reaches Vault, whatever
// Vault does with it: its audit log skips some refused requests), and can
// slow every request down or cut the server off.
type CountingProxy struct {
	Addr string // http://127.0.0.1:port

	delay    atomic.Int64 // nanoseconds added before forwarding
	down     atomic.Bool
	inFlight atomic.Int64
	delayed  atomic.Int64

	mu         sync.Mutex
	counts     map[string]int
	tokens     map[string]bool // X-Vault-Token values seen
	pathDelays map[string]time.Duration
	requests   []Request
	rewrites   map[string]string // path prefix -> replacement
}

// Request is one request the proxy forwarded.
type Request struct {
	Path      string // as the client sent it, without /v1/
	Namespace string // its X-Vault-Namespace header
}

// NewCountingProxy forwards a new loopback port to the server until the test ends.
func NewCountingProxy(t T, s *Server) *CountingProxy {
	t.Helper()
	target, err := url.Parse(s.Addr)
	if err != nil {
		t.Fatalf("proxy target: %v", err)
	}
	p := &CountingProxy{counts: map[string]int{}, tokens: map[string]bool{}, pathDelays: map[string]time.Duration{}, rewrites: map[string]string{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			// Like an unreachable server: the connection ends without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		p.mu.Lock()
		path := strings.TrimPrefix(r.URL.Path, "/v1/")
		p.counts[path]++
		p.requests = append(p.requests, Request{Path: path, Namespace: r.Header.Get("X-Vault-Namespace")})
		for prefix, repl := range p.rewrites {
			if strings.HasPrefix(path, prefix) {
				r.URL.Path = "/v1/" + repl + strings.TrimPrefix(path, prefix)
			}
		}
		if tok := r.Header.Get("X-Vault-Token"); tok != "" {
			p.tokens[tok] = true
		}
		d := time.Duration(p.delay.Load())
		for prefix, pd := range p.pathDelays {
			if strings.HasPrefix(path, prefix) {
				d = max(d, pd)
			}
		}
		p.mu.Unlock()
		p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		if d > 0 {
			p.delayed.Add(1)
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				p.delayed.Add(-1)
				return
			}
			p.delayed.Add(-1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Addr = srv.URL
	return p
}

// Count returns how many requests went to an API path (e.g. auth/token/lookup).
func (p *CountingProxy) Count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}

// Tokens returns every Vault token clients sent through the proxy: what a
// test checks never leaks.
func (p *CountingProxy) Tokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.tokens))
	for tok := range p.tokens {
		out = append(out, tok)
	}
	return out
}

// SetDelay makes every request wait d before it is forwarded.
func (p *CountingProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Requests returns every request forwarded so far, in order.
func (p *CountingProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// Rewrite forwards requests for paths starting with prefix to replacement
// instead: how a test has the open-source server answer Vault Enterprise's
// namespaced paths (<ns>/identity/oidc/... to identity/oidc/...).
func (p *CountingProxy) Rewrite(prefix, replacement string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrites[prefix] = replacement
}

// SetPathDelay makes requests to API paths starting with prefix wait d.
func (p *CountingProxy) SetPathDelay(prefix string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pathDelays[prefix] = d
}

// SetDown cuts the server off (true) or restores it (false).
func (p *CountingProxy) SetDown(down bool) { p.down.Store(down) }

// Delayed is the number of requests held by SetDelay or SetPathDelay now.
func (p *CountingProxy) Delayed() int64 { return p.delayed.Load() }

// InFlight is the number of requests being forwarded (or delayed) now.
func (p *CountingProxy) InFlight() int64 { return p.inFlight.Load() }
