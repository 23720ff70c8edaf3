package vaulttest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy is a loopback TCP forwarder in front of a server. It can be cut, to
// make the server unreachable without losing its state, and it counts the
// connections it forwarded.
type Proxy struct {
	Addr string // http://127.0.0.1:port

	target string
	ln     net.Listener
	down   atomic.Bool
	conns  atomic.Int64

	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// NewProxy forwards a new loopback port to target (host:port) until the test ends.
func NewProxy(t T, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{Addr: "http://" + ln.Addr().String(), target: target, ln: ln, open: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	return p
}

// SetDown cuts (true) or restores (false) the path to the server. While down,
// open connections are closed and new ones are closed as soon as accepted.
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.closeAll()
	}
}

// Connections returns how many connections were forwarded so far.
func (p *Proxy) Connections() int64 { return p.conns.Load() }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			_ = c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.conns.Add(1)
	p.track(c, up)
	Splice(c, up)
	p.untrack(c, up)
}

// Splice copies bytes both ways between a and b until either side ends,
// then closes both and returns once both copies are done.
func Splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	<-done
	_ = a.Close()
	_ = b.Close()
	<-done
}

func (p *Proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.open[c] = struct{}{}
	}
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.open, c)
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.open {
		_ = c.Close()
	}
}
