package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/ratelimit"
)

// refusalLogEvery is the least time between two warnings for one reason.
const refusalLogEvery = 10 * time.Second

// refusalEventEvery is the interval refusal audit events aggregate over.
const refusalEventEvery = 10 * time.Second

// refusals counts requests the server side did not accept, by outcome and
// reason, and says why at warn level, at most once per reason every
// refusalLogEvery (with how many were not logged), never with the credential.
type refusals struct {
	logger    *zap.Logger
	telemetry *telemetry.Telemetry
	tally     *auditevent.Tally // refusal audit events, per reason and peer

	mu   sync.Mutex
	byID map[outcomeReason]*reasonLog
}

type reasonLog struct {
	warn       ratelimit.Every
	suppressed atomic.Int64
	add        func()
}

func newRefusals(logger *zap.Logger, tel *telemetry.Telemetry, tally *auditevent.Tally) *refusals {
	return &refusals{logger: logger, telemetry: tel, tally: tally, byID: map[outcomeReason]*reasonLog{}}
}

func (r *refusals) refused(ctx context.Context, reason, detail string) {
	r.record(ctx, "refused", reason, detail)
}

func (r *refusals) unavailable(ctx context.Context, reason, detail string) {
	r.record(ctx, "unavailable", reason, detail)
}

// unidentified counts a request a node agent forwards without an identity
// (kubernetes_pods unidentified: pass): its sender's pod has none to give.
func (r *refusals) unidentified(ctx context.Context, reason, detail string) {
	r.record(ctx, OutcomeUnidentified, reason, detail)
}

// OutcomeUnidentified: accepted without an identity (kubernetes_pods
// unidentified: pass); the gateway stamps the agent's own.
const OutcomeUnidentified = "unidentified"

func (r *refusals) record(ctx context.Context, o, reason, detail string) {
	l := r.get(o, reason)
	l.add()
	if r.tally.Active() {
		r.tally.Add(o, reason, clientAddress(ctx))
	}
	if !l.warn.Allow(refusalLogEvery) {
		l.suppressed.Add(1)
		return
	}
	msg := "refused a request"
	switch o {
	case "unavailable":
		msg = "could not verify a request; the sender was told to retry"
	case OutcomeUnidentified:
		msg = "forwarding a request without its sender's identity (unidentified: pass): the gateway stamps this agent's"
	}
	fields := []zap.Field{zap.String("reason", reason), zap.Int64("not_logged_since_last", l.suppressed.Swap(0))}
	if detail != "" {
		fields = append(fields, zap.String("detail", detail))
	}
	r.logger.Warn(msg, fields...)
}

type outcomeReason struct{ outcome, reason string }

func (r *refusals) get(o, reason string) *reasonLog {
	key := outcomeReason{o, reason}
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.byID[key]
	if !ok {
		opts := []metric.AddOption{r.telemetry.Outcome(o, reason)} // built once: no allocation per refusal
		l = &reasonLog{add: func() { r.telemetry.VaultauthServerRequests.Add(context.Background(), 1, opts...) }}
		r.byID[key] = l
	}
	return l
}
