// Package guard bounds what a receiver decodes: the bytes decoded at once,
// and the nesting of OTLP/JSON, before the receiver decodes a byte.
package guard // import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/guard"

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/bits"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/ratelimit"
)

// A vaultauth instance guards the receivers that list it in their
// middlewares: it bounds the request bytes they decode at once
// (guard.max_inflight_bytes) and refuses OTLP/JSON nested deeper than
// guard.max_json_depth before a byte of it is decoded. Both sides of the
// Collector's middleware seam run before the receiver decodes:
//
//   - HTTP: the handler the middleware wraps gets the body after
//     authentication and decompression, before the receiver reads it. The
//     guard reads it (scanning JSON nesting as it arrives), then waits for
//     its turn, then hands the receiver the bytes.
//   - gRPC: messages are decoded by the server's codec before any
//     interceptor runs, so the guard wraps the codec: a message waits for
//     its turn, is decoded, and gives its bytes back when its call ends (a
//     stats handler sees the end). A message whose decoding fails gives them
//     back at once.

// Why the guard refused a request (the reason attribute of its counter).
const (
	ReasonTooDeep  = "json_too_deep"
	ReasonTooLarge = "body_too_large"
	ReasonBusy     = "busy"
	ReasonBadBody  = "unreadable_body"
)

// refusalLogEvery is the least time between two warnings for one reason.
const refusalLogEvery = 10 * time.Second

// Settings are the guard's limits (the `guard` block).
type Settings struct {
	MaxInflightBytes int64
	MaxJSONDepth     int
	MaxWait          time.Duration
}

// Guard is one instance's budget of bytes in decoding, shared by every
// receiver and protocol that lists the instance.
type Guard struct {
	cfg      Settings
	budget   *semaphore.Weighted
	inflight atomic.Int64
	protobuf encoding.CodecV2 // the codec the guard's codec wraps
	held     sync.Map         // a decoded gRPC message -> the bytes it holds, until its call ends

	telemetry *telemetry.Telemetry
	logger    *zap.Logger
	byReason  map[string]*guardReason // one per refusal reason, built once
}

type guardReason struct {
	count []metric.AddOption
	warn  ratelimit.Every
}

// New makes a guard with cfg's limits.
func New(cfg Settings, tel *telemetry.Telemetry, logger *zap.Logger) *Guard {
	g := &Guard{
		cfg: cfg, budget: semaphore.NewWeighted(cfg.MaxInflightBytes),
		telemetry: tel, logger: logger, byReason: map[string]*guardReason{},
		protobuf: encoding.GetCodecV2("proto"),
	}
	for _, reason := range []string{ReasonTooDeep, ReasonTooLarge, ReasonBusy, ReasonBadBody} {
		g.byReason[reason] = &guardReason{count: []metric.AddOption{
			metric.WithAttributeSet(tel.Attrs(attribute.String("reason", reason))),
		}}
	}
	return g
}

// RegisterGauge reports the bytes in decoding now.
func (g *Guard) RegisterGauge() error {
	attrs := metric.WithAttributeSet(g.telemetry.Attrs())
	return g.telemetry.RegisterVaultauthGuardInflightBytesCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(g.inflight.Load(), attrs)
		return nil
	})
}

// weight is what a body of n bytes takes from the budget: a body larger
// than the whole budget takes all of it (it waits until it is alone).
func (g *Guard) weight(n int) int64 { return max(1, min(int64(n), g.cfg.MaxInflightBytes)) }

func (g *Guard) acquired(n int64) { g.inflight.Add(n) }

// acquire takes n bytes of the budget, waiting up to max_wait for them
// (the timer only when the budget is short: the common case costs none).
func (g *Guard) acquire(ctx context.Context, n int64) error {
	if g.budget.TryAcquire(n) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.MaxWait)
	defer cancel()
	return g.budget.Acquire(ctx, n)
}

func (g *Guard) release(n int64) {
	g.inflight.Add(-n)
	g.budget.Release(n)
}

// refused counts a request the guard turned away, and says why at the
// collector (at most once per reason every refusalLogEvery).
func (g *Guard) refused(reason string) {
	r := g.byReason[reason]
	g.telemetry.VaultauthGuardRefusedRequests.Add(context.Background(), 1, r.count...)
	if r.warn.Allow(refusalLogEvery) {
		g.logger.Warn("the receiver guard refused a request", zap.String("reason", reason), zap.String("told", guardMessage(reason)),
			zap.Int64("max_inflight_bytes", g.cfg.MaxInflightBytes), zap.Int("max_json_depth", g.cfg.MaxJSONDepth))
	}
}

// WrapHTTP guards an HTTP receiver's handler (extensionmiddleware.HTTPServer).
func (g *Guard) WrapHTTP(_ context.Context, next http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, reason := g.readBody(r)
		// The receiver is done with the body when ServeHTTP returns (it reads
		// it into its own buffer; net/http forbids reading it after): the
		// buffer goes back to the pool.
		defer putBody(body)
		if reason != "" {
			g.refused(reason)
			http.Error(w, guardMessage(reason), guardStatus(reason))
			return
		}
		n := g.weight(len(body))
		if err := g.acquire(r.Context(), n); err != nil {
			g.refused(ReasonBusy)
			w.Header().Set("Retry-After", "1")
			http.Error(w, guardMessage(ReasonBusy), http.StatusServiceUnavailable)
			return
		}
		g.acquired(n)
		defer g.release(n)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	}), nil
}

// readBody reads the whole (decompressed) body, stopping JSON that nests
// beyond max_json_depth as soon as it does. It returns a refusal reason
// instead when the body cannot be taken.
func (g *Guard) readBody(r *http.Request) ([]byte, string) {
	var depth *jsonDepth
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		depth = &jsonDepth{max: g.cfg.MaxJSONDepth}
	}
	// Read straight into the body's buffer, sized from Content-Length when
	// it is known (a hint: a decompressed body grows), with room for the
	// read that finds the end; scanning each read.
	size := int64(32 << 10)
	if r.ContentLength > 0 {
		size = min(r.ContentLength, 1<<20) + 512
	}
	body := getBody(int(size))
	for {
		if len(body) == cap(body) {
			body = slices.Grow(body, len(body))
		}
		n, err := r.Body.Read(body[len(body):cap(body)])
		if n > 0 {
			if depth != nil && depth.scan(body[len(body):len(body)+n]) != nil {
				return body[:0], ReasonTooDeep
			}
			body = body[:len(body)+n]
		}
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return body, ""
		case errors.As(err, &tooLarge):
			return body[:0], ReasonTooLarge
		case err != nil:
			return body[:0], ReasonBadBody
		}
	}
}

// bodies are read buffers for reuse, by size class (powers of two from
// 32 KiB to 4 MiB): a request's body costs a copy, not an allocation the
// size of the body, and a request takes a buffer less than four times the
// size it asked for (a small or slow one never holds a large buffer).
var bodies [maxBodyClass - minBodyClass + 1]sync.Pool

const (
	minBodyClass = 15 // 32 KiB
	maxBodyClass = 22 // 4 MiB
)

// getBody returns an empty buffer of at least size bytes.
func getBody(size int) []byte {
	class := max(minBodyClass, bits.Len(uint(size-1))) // the least power of two >= size
	if class > maxBodyClass {
		return make([]byte, 0, size)
	}
	if p, ok := bodies[class-minBodyClass].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 1<<class)
}

// putBody keeps b for reuse in the class its capacity fills.
func putBody(b []byte) {
	class := bits.Len(uint(cap(b))) - 1 // the greatest power of two <= cap
	if class < minBodyClass || class > maxBodyClass {
		return
	}
	b = b[:0]
	bodies[class-minBodyClass].Put(&b)
}

func guardStatus(reason string) int {
	switch reason {
	case ReasonTooLarge:
		return http.StatusRequestEntityTooLarge
	case ReasonBusy:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// guardMessage is what the sender is told: what to change, nothing more.
func guardMessage(reason string) string {
	switch reason {
	case ReasonTooDeep:
		return errTooDeep.Error()
	case ReasonTooLarge:
		return "the request body is larger than this receiver accepts"
	case ReasonBusy:
		return "the receiver is busy decoding other requests; retry later"
	}
	return "the request body could not be read"
}

// GRPCServerOptions guards a gRPC receiver (extensionmiddleware.GRPCServer).
func (g *Guard) GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(guardCodec{g}), grpc.StatsHandler(guardStats{g})}
}

// guardCodec is the gRPC server's codec: protobuf, as the Collector's, with
// each message waiting for its turn before it is decoded.
type guardCodec struct{ g *Guard }

func (c guardCodec) Name() string                           { return c.g.protobuf.Name() }
func (c guardCodec) Marshal(v any) (mem.BufferSlice, error) { return c.g.protobuf.Marshal(v) }

func (c guardCodec) Unmarshal(data mem.BufferSlice, v any) error {
	n := c.g.weight(data.Len())
	// It waits without a deadline: a codec has no context, and any error
	// here reaches the sender as Internal, which OTLP senders do not retry.
	// Every call that holds bytes gives them back when it ends.
	_ = c.g.budget.Acquire(context.Background(), n)
	c.g.acquired(n)
	if err := c.g.protobuf.Unmarshal(data, v); err != nil {
		c.g.release(n)
		return err
	}
	c.g.held.Store(v, n)
	return nil
}

// guardStats ties each decoded message to its call, and gives its bytes
// back when the call ends (the receiver has then handed the data on).
type guardStats struct{ g *Guard }

type guardCallKey struct{}

// guardCall is the bytes one call holds.
type guardCall struct{ held atomic.Int64 }

func (guardStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, guardCallKey{}, &guardCall{})
}

func (s guardStats) HandleRPC(ctx context.Context, st stats.RPCStats) {
	call, _ := ctx.Value(guardCallKey{}).(*guardCall)
	if call == nil {
		return
	}
	switch e := st.(type) {
	case *stats.InPayload:
		if n, ok := s.g.held.LoadAndDelete(e.Payload); ok {
			call.held.Add(n.(int64))
		}
	case *stats.End:
		if n := call.held.Swap(0); n > 0 {
			s.g.release(n)
		}
	}
}

func (guardStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (guardStats) HandleConn(context.Context, stats.ConnStats)                       {}
