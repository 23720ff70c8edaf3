// Package guard bounds what a receiver decodes: the bytes decoded at once,
// and the nesting of OTLP/JSON, before the receiver decodes a byte.
package guard // import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/guard"

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

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
//     guard wraps the body: each read is scanned for JSON nesting before
//     the receiver sees it, and the read that ends the body waits for the
//     body's turn (the OTLP receiver reads a whole body, then decodes it).
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
		body := &guardedBody{g: g, body: r.Body, ctx: r.Context()}
		if isJSON(r.Header.Get("Content-Type")) {
			body.json, body.depth.max = true, g.cfg.MaxJSONDepth
		}
		r.Body = body
		defer body.done()
		next.ServeHTTP(w, r)
	}), nil
}

// isJSON says whether a Content-Type is OTLP/JSON's, in any letter case
// and with any parameters (as the receiver reads it), without a copy.
func isJSON(contentType string) bool {
	const jsonType = "application/json"
	ct := strings.TrimSpace(contentType)
	return len(ct) >= len(jsonType) && strings.EqualFold(ct[:len(jsonType)], jsonType)
}

// guardedBody is a request's body as the receiver reads it: each read is
// scanned for JSON nesting before the receiver sees it, and the read that
// ends the body first waits for the body's turn in the budget, so the
// receiver starts decoding only then (the OTLP receiver reads the whole
// body before decoding it). A refusal is a gRPC status error, which the
// OTLP receiver answers with its HTTP status (InvalidArgument: 400;
// Unavailable with a retry delay: 503 and Retry-After) in an OTLP Status.
// The body is never copied.
type guardedBody struct {
	g     *Guard
	body  io.ReadCloser
	ctx   context.Context
	json  bool
	depth jsonDepth
	read  int64 // bytes so far
	held  int64 // budget taken at the end of the body, given back by done
	err   error // once set, every read returns it
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	if n > 0 {
		if b.json && b.depth.scan(p[:n]) != nil {
			return 0, b.refuse(ReasonTooDeep)
		}
		b.read += int64(n)
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		weight := b.g.weight(int(b.read))
		if b.g.acquire(b.ctx, weight) != nil {
			return 0, b.refuse(ReasonBusy)
		}
		b.g.acquired(weight)
		b.held, b.err = weight, io.EOF
		return n, io.EOF
	case isTooLarge(err):
		return 0, b.refuse(ReasonTooLarge)
	}
	return 0, b.refuse(ReasonBadBody)
}

// isTooLarge says whether err is the receiver's body limit (its own
// function: the target errors.As needs lives on the heap).
func isTooLarge(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge)
}

// Close closes the body. Its error is not the sender's business (the
// receiver would write it into the response): it is dropped, as before
// the guard wrapped the body.
func (b *guardedBody) Close() error {
	_ = b.body.Close()
	return nil
}

// refuse counts the refusal and ends the body with its status.
func (b *guardedBody) refuse(reason string) error {
	b.g.refused(reason)
	b.err = refusal(reason)
	return b.err
}

// done gives back the budget the body took (the receiver is done with it:
// net/http forbids using the request after ServeHTTP returns).
func (b *guardedBody) done() {
	if b.held > 0 {
		b.g.release(b.held)
	}
}

// refusal is the status a refused body ends with; its message says what to
// change, nothing more.
func refusal(reason string) error {
	if reason == ReasonBusy {
		st, err := status.New(codes.Unavailable, guardMessage(reason)).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
		if err == nil {
			return st.Err()
		}
	}
	return status.Error(codes.InvalidArgument, guardMessage(reason))
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
