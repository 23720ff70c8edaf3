package testbed

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Balancer stands where users put a load balancer in front of the gateway
// tier (a Kubernetes Service, an L4 load balancer): a loopback TCP listener
// that hands each new connection to the next gateway that accepts one. A
// gateway that dies closes its connections; their agents reconnect, and
// land on the others. It holds no state a collector needs.
type Balancer struct {
	Addr string // 127.0.0.1:port

	ln       net.Listener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup

	mu    sync.Mutex
	open  map[net.Conn]struct{}
	conns map[string]int // connections handed to each backend, by address
}

// StartBalancer balances new connections across backends (host:port) until
// the test ends.
func StartBalancer(t T, backends ...string) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("balancer listen: %v", err)
	}
	b := &Balancer{Addr: ln.Addr().String(), ln: ln, backends: backends, open: map[net.Conn]struct{}{}, conns: map[string]int{}}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		b.mu.Lock()
		for c := range b.open {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

// Connections returns how many connections each backend was handed so far.
func (b *Balancer) Connections() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.conns))
	for k, v := range b.conns {
		out[k] = v
	}
	return out
}

func (b *Balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.forward(c) }()
	}
}

// forward pipes c to the next backend that takes the connection, trying
// each once; with none, c is closed and its client retries.
func (b *Balancer) forward(c net.Conn) {
	var up net.Conn
	var backend string
	for range b.backends {
		backend = b.backends[b.next.Add(1)%uint64(len(b.backends))]
		var err error
		if up, err = net.Dial("tcp", backend); err == nil {
			break
		}
	}
	if up == nil {
		_ = c.Close()
		return
	}
	b.mu.Lock()
	b.open[c], b.open[up] = struct{}{}, struct{}{}
	b.conns[backend]++
	b.mu.Unlock()
	vaulttest.Splice(c, up)
	b.mu.Lock()
	delete(b.open, c)
	delete(b.open, up)
	b.mu.Unlock()
}
