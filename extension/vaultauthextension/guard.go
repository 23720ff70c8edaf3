package vaultauthextension

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"

	"github.com/vaultlightstep/vaultlightstep/internal/ratelimit"
)

// Every vaultauth instance can guard the receivers that list it in their
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

var (
	_ extensionmiddleware.HTTPServer = (*vaultLink)(nil)
	_ extensionmiddleware.GRPCServer = (*vaultLink)(nil)
)

// GetHTTPHandler guards an HTTP receiver (extensionmiddleware.HTTPServer).
func (l *vaultLink) GetHTTPHandler(context.Context) (extensionmiddleware.WrapHTTPHandlerFunc, error) {
	return l.guard.wrapHTTP, nil
}

// GetGRPCServerOptions guards a gRPC receiver (extensionmiddleware.GRPCServer).
func (l *vaultLink) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(guardCodec{l.guard}), grpc.StatsHandler(guardStats{l.guard})}, nil
}

// Why the guard refused a request (the reason attribute of its counter).
const (
	guardTooDeep  = "json_too_deep"
	guardTooLarge = "body_too_large"
	guardBusy     = "busy"
	guardBadBody  = "unreadable_body"
)

// guard is one instance's budget of bytes in decoding, shared by every
// receiver and protocol that lists the instance.
type guard struct {
	cfg      GuardConfig
	budget   *semaphore.Weighted
	inflight atomic.Int64
	protobuf encoding.CodecV2 // the codec the guard's codec wraps
	held     sync.Map         // a decoded gRPC message -> the bytes it holds, until its call ends

	telemetry *telemetry
	logger    *zap.Logger
	byReason  map[string]*guardReason // one per refusal reason, built once
}

type guardReason struct {
	count []metric.AddOption
	warn  ratelimit.Every
}

func newGuard(cfg GuardConfig, tel *telemetry, logger *zap.Logger) *guard {
	g := &guard{
		cfg: cfg, budget: semaphore.NewWeighted(cfg.MaxInflightBytes),
		telemetry: tel, logger: logger, byReason: map[string]*guardReason{},
		protobuf: encoding.GetCodecV2("proto"),
	}
	for _, reason := range []string{guardTooDeep, guardTooLarge, guardBusy, guardBadBody} {
		g.byReason[reason] = &guardReason{count: []metric.AddOption{
			metric.WithAttributeSet(tel.attrs(attribute.String("reason", reason))),
		}}
	}
	return g
}

// registerGauge reports the bytes in decoding now.
func (g *guard) registerGauge() error {
	attrs := metric.WithAttributeSet(g.telemetry.attrs())
	return g.telemetry.RegisterVaultauthGuardInflightBytesCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(g.inflight.Load(), attrs)
		return nil
	})
}

// weight is what a body of n bytes takes from the budget: a body larger
// than the whole budget takes all of it (it waits until it is alone).
func (g *guard) weight(n int) int64 { return max(1, min(int64(n), g.cfg.MaxInflightBytes)) }

func (g *guard) acquired(n int64) { g.inflight.Add(n) }

func (g *guard) release(n int64) {
	g.inflight.Add(-n)
	g.budget.Release(n)
}

// refused counts a request the guard turned away, and says why at the
// collector (at most once per reason every refusalLogEvery).
func (g *guard) refused(reason string) {
	r := g.byReason[reason]
	g.telemetry.VaultauthGuardRefusedRequests.Add(context.Background(), 1, r.count...)
	if r.warn.Allow(refusalLogEvery) {
		g.logger.Warn("the receiver guard refused a request", zap.String("reason", reason), zap.String("told", guardMessage(reason)),
			zap.Int64("max_inflight_bytes", g.cfg.MaxInflightBytes), zap.Int("max_json_depth", g.cfg.MaxJSONDepth))
	}
}

func (g *guard) wrapHTTP(_ context.Context, next http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, reason := g.readBody(r)
		if reason != "" {
			g.refused(reason)
			http.Error(w, guardMessage(reason), guardStatus(reason))
			return
		}
		n := g.weight(len(body))
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.MaxWait)
		err := g.budget.Acquire(ctx, n)
		cancel()
		if err != nil {
			g.refused(guardBusy)
			w.Header().Set("Retry-After", "1")
			http.Error(w, guardMessage(guardBusy), http.StatusServiceUnavailable)
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
func (g *guard) readBody(r *http.Request) ([]byte, string) {
	var depth *jsonDepth
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		depth = &jsonDepth{max: g.cfg.MaxJSONDepth}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, 1<<20))) // a hint, not a promise
	}
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(chunk)
		if n > 0 {
			if depth != nil {
				if depth.scan(chunk[:n]) != nil {
					return nil, guardTooDeep
				}
			}
			buf.Write(chunk[:n])
		}
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return buf.Bytes(), ""
		case errors.As(err, &tooLarge):
			return nil, guardTooLarge
		case err != nil:
			return nil, guardBadBody
		}
	}
}

func guardStatus(reason string) int {
	switch reason {
	case guardTooLarge:
		return http.StatusRequestEntityTooLarge
	case guardBusy:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// guardMessage is what the sender is told: what to change, nothing more.
func guardMessage(reason string) string {
	switch reason {
	case guardTooDeep:
		return errTooDeep.Error()
	case guardTooLarge:
		return "the request body is larger than this receiver accepts"
	case guardBusy:
		return "the receiver is busy decoding other requests; retry later"
	}
	return "the request body could not be read"
}

// guardCodec is the gRPC server's codec: protobuf, as the Collector's, with
// each message waiting for its turn before it is decoded.
type guardCodec struct{ g *guard }

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
type guardStats struct{ g *guard }

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
