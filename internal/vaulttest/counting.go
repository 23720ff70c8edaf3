package vaulttest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// CountingProxy is a loopback HTTP reverse proxy in front of a server that
// counts the requests it forwards, by API path. It counts what reaches Vault
// whatever Vault does with it (Vault's audit log skips some failed requests).
type CountingProxy struct {
	Addr string // http://127.0.0.1:port

	mu     sync.Mutex
	counts map[string]int
}

// NewCountingProxy forwards a new loopback port to the server until the test ends.
func NewCountingProxy(t T, s *Server) *CountingProxy {
	t.Helper()
	target, err := url.Parse(s.Addr)
	if err != nil {
		t.Fatalf("proxy target: %v", err)
	}
	p := &CountingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[strings.TrimPrefix(r.URL.Path, "/v1/")]++
		p.mu.Unlock()
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
