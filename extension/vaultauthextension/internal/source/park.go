package source

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/ratelimit"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// With tenants, every tenant's exports share the exporter's consumers. An
// export that fails with a retryable error holds a consumer for its whole
// retry loop (`max_elapsed_time: 0` keeps a gateway's data), so a few
// batches of one tenant whose token is missing, refused, or whose project
// throttles would take every consumer, and every other tenant would stop.
// The park takes such an export off the exporter: it is kept, in order,
// in the tenant's own place (memory or a storage extension), the exporter
// is told it is done, and the tenant's own replayer sends it once the
// tenant can send again. Only that tenant waits; its data is not lost.
//
// While a tenant is parked, its new exports go straight to the park, and
// its new requests are held at its senders (the door, vaultidentity
// tenant_credentials) when its credential is the problem or its park is
// over max_size_mib. The first replay the backend takes unparks it: new
// exports go straight to the backend again while the rest drains.

// Why a tenant's exports are parked: the reason attribute of the metrics.
const (
	parkCredentialMissing  = "credential_missing"  // no usable credential (none written, deleted, empty, unreadable)
	parkCredentialRejected = "credential_rejected" // the backend refused the credential (401, 403)
	parkBackendUnavailable = "backend_unavailable" // the backend throttles, is down, or timed out
	parkRestored           = "restored"            // parked before this collector started
)

// sendOutcome is what became of one attempt to send.
type sendOutcome int

const (
	outcomeSent        sendOutcome = iota
	outcomeRejected                // the backend refused the credential
	outcomeUnavailable             // retryable: throttled, down, timed out
	outcomeFailed                  // refused for good, or given up by the exporter: the exporter's to report
	outcomeNoTransport             // a replay with no connection to its target yet
)

// replayTimeout bounds one replayed export.
const replayTimeout = 30 * time.Second

// park is a tenants client's parked exports, and the connections their
// replays go through (the exporters' own, learned from their first calls).
type park struct {
	t        *Tenants
	cfg      ParkSettings
	maxBytes int64
	store    *parkStore
	memory   *memoryStorage // nil with a storage extension
	runCtx   context.Context

	conns      sync.Map // gRPC target -> *grpc.ClientConn
	bases      sync.Map // HTTP scheme://host -> http.RoundTripper
	tmu        sync.Mutex
	transports chan struct{} // closed, and replaced, when a new transport is seen

	mu     sync.Mutex
	parked map[string]string // tenant -> reason, for the status
}

func newPark(t *Tenants, cfg ParkSettings) *park {
	return &park{
		t: t, cfg: cfg, maxBytes: cfg.MaxBytes, runCtx: context.Background(),
		transports: make(chan struct{}), parked: map[string]string{},
	}
}

// logger is the instance's.
func (p *park) logger() *zap.Logger { return p.t.env.Logger }

// sawGRPC learns a gRPC connection replays can use.
func (p *park) sawGRPC(cc *grpc.ClientConn) {
	if old, loaded := p.conns.Swap(cc.Target(), cc); !loaded || old != cc {
		p.transportSeen()
	}
}

// sawHTTP learns an HTTP transport replays can use.
func (p *park) sawHTTP(target string, base http.RoundTripper) {
	if _, loaded := p.bases.LoadOrStore(target, base); !loaded {
		p.transportSeen()
	}
}

func (p *park) transportSeen() {
	p.tmu.Lock()
	close(p.transports)
	p.transports = make(chan struct{})
	p.tmu.Unlock()
}

func (p *park) transportsChanged() <-chan struct{} {
	p.tmu.Lock()
	defer p.tmu.Unlock()
	return p.transports
}

// noteParked keeps the status's list of parked tenants current.
func (p *park) noteParked(tenant, reason string) {
	p.mu.Lock()
	if reason == "" {
		delete(p.parked, tenant)
	} else {
		p.parked[tenant] = reason
	}
	snapshot := make(map[string]string, len(p.parked))
	for k, v := range p.parked {
		snapshot[k] = v
	}
	p.mu.Unlock()
	p.t.env.Status.Annotate("parked_tenants", snapshot)
}

// tenantPark is one tenant's parked exports and its replayer.
type tenantPark struct {
	p      *park
	tenant string
	slot   *tenantSlot

	parked atomic.Bool
	reason atomic.Pointer[string]
	count  atomic.Int64 // exports parked now (for the gauge)
	bytes  atomic.Int64 // their size (for the door and the gauge)
	wake   chan struct{}

	mu        sync.Mutex
	index     parkIndex
	replaying bool
	rejected  *Value // the credential the backend refused, not to be retried

	attrs    attribute.Set
	warnFail ratelimit.Every
}

func newTenantPark(p *park, tenant string, slot *tenantSlot) *tenantPark {
	return &tenantPark{
		p: p, tenant: tenant, slot: slot, wake: make(chan struct{}, 1),
		attrs: p.t.env.Telemetry.Attrs(attribute.String("tenant", tenant)),
	}
}

// nudge wakes the replayer (a new credential, say).
func (tp *tenantPark) nudge() {
	select {
	case tp.wake <- struct{}{}:
	default:
	}
}

// holdsDoor says whether the tenant's new requests must wait at their
// senders: its credential is the problem, or its park is full.
func (tp *tenantPark) holdsDoor() bool {
	if !tp.parked.Load() {
		return false
	}
	return *tp.reason.Load() != parkBackendUnavailable || tp.bytes.Load() >= tp.p.maxBytes
}

// export sends one export of the tenant's data, or parks it. cred is the
// credential the export would carry (nil: none usable); build makes the
// parked form; send tries the backend. It returns what the exporter must
// see: nil when the export was sent or parked.
func (tp *tenantPark) export(ctx context.Context, cred *Value, build func() (*parkedExport, error), send func() (sendOutcome, error)) error {
	if tp.parked.Load() {
		if parked, err := tp.offer(ctx, build); parked {
			return err
		}
	}
	if cred == nil {
		return tp.park(ctx, parkCredentialMissing, nil, build, tp.slot.src.errMissing)
	}
	out, err := send()
	switch out {
	case outcomeRejected:
		tp.slot.src.rejected() // the token may have been rotated in Vault: read it again
		return tp.park(ctx, parkCredentialRejected, cred, build, err)
	case outcomeUnavailable:
		return tp.park(ctx, parkBackendUnavailable, nil, build, err)
	}
	return err
}

// offer parks the export if the tenant is parked now.
func (tp *tenantPark) offer(ctx context.Context, build func() (*parkedExport, error)) (bool, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if !tp.parked.Load() {
		return false, nil
	}
	return true, tp.pushLocked(ctx, build, nil, *tp.reason.Load())
}

// park parks the export and the tenant. cause is what the exporter sees if
// the export cannot be kept.
func (tp *tenantPark) park(ctx context.Context, reason string, rejected *Value, build func() (*parkedExport, error), cause error) error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if err := tp.pushLocked(ctx, build, cause, reason); err != nil {
		return err
	}
	if rejected != nil {
		tp.rejected = rejected
	}
	tp.setParkedLocked(reason)
	return nil
}

// pushLocked keeps one export; tp.mu is held.
func (tp *tenantPark) pushLocked(ctx context.Context, build func() (*parkedExport, error), cause error, reason string) error {
	e, err := build()
	if err == nil {
		raw := e.encode()
		var next parkIndex
		if next, err = tp.p.store.push(context.WithoutCancel(ctx), tp.tenant, tp.index, raw); err == nil {
			tp.index = next
			tp.count.Store(int64(next.len()))
			tp.bytes.Store(next.Bytes)
			tp.p.t.env.Telemetry.VaultauthParkedExports.Add(ctx, 1, metric.WithAttributeSet(
				tp.p.t.env.Telemetry.Attrs(attribute.String("tenant", tp.tenant), attribute.String("reason", reason))))
			tp.startReplayLocked()
			return nil
		}
	}
	if tp.warnFail.Allow(refusalLogEvery) {
		tp.p.logger().Error("could not park an export; the exporter retries it", zap.String("tenant", tp.tenant), zap.Error(err))
	}
	if cause == nil {
		cause = err
	}
	return cause
}

// setParkedLocked parks the tenant (or changes why); tp.mu is held.
func (tp *tenantPark) setParkedLocked(reason string) {
	old := tp.reason.Swap(&reason)
	if tp.parked.Swap(true) && old != nil && *old == reason {
		return
	}
	tp.p.logger().Warn("parking a tenant's exports: they wait in its own place and are sent when it can send again; "+
		"the other tenants' go on", zap.String("tenant", tp.tenant), zap.String("reason", reason),
		zap.Int64("parked_exports", tp.count.Load()))
	tp.p.noteParked(tp.tenant, reason)
}

// unparkLocked lets the tenant's new exports go to the backend again; tp.mu is held.
func (tp *tenantPark) unparkLocked() {
	if tp.parked.Swap(false) {
		tp.p.logger().Info("a parked tenant sends again; the rest of its parked exports follow",
			zap.String("tenant", tp.tenant), zap.Int64("parked_exports", tp.count.Load()))
		tp.p.noteParked(tp.tenant, "")
	}
}

func (tp *tenantPark) startReplayLocked() {
	if tp.replaying {
		return
	}
	tp.replaying = true
	tp.p.t.env.Run(func() { tp.replay(tp.p.runCtx) })
}

// replay sends the tenant's parked exports, oldest first, when it can
// send: a credential other than the one refused, and the retry interval
// of its last unavailable backend passed.
func (tp *tenantPark) replay(ctx context.Context) {
	backoff := vaultclient.NewBackoff(vaultclient.RetryConfig{InitialInterval: tp.p.cfg.InitialInterval, MaxInterval: tp.p.cfg.MaxInterval})
	var retryAt time.Time
	for {
		cred, ok := tp.waitSendable(ctx, retryAt)
		if !ok {
			tp.stopReplaying()
			return
		}
		raw, ok := tp.oldest(ctx)
		if !ok {
			return // drained: the tenant is unparked
		}
		e, err := decodeParked(raw)
		out := outcomeFailed
		if err == nil {
			out, err = tp.p.resend(ctx, tp.tenant, cred, e)
		}
		tp.slot.used.Store(true) // a parked tenant is not idle
		switch out {
		case outcomeSent:
			tp.popOldest(ctx, len(raw), true)
			backoff.Reset()
			retryAt = time.Time{}
		case outcomeFailed:
			tp.popOldest(ctx, len(raw), false)
			tp.p.logger().Error("the backend refused a parked export for good; it is dropped",
				zap.String("tenant", tp.tenant), zap.Error(err))
		case outcomeRejected:
			tp.mu.Lock()
			tp.rejected = cred
			tp.setParkedLocked(parkCredentialRejected)
			tp.mu.Unlock()
			tp.slot.src.rejected()
		case outcomeUnavailable:
			retryAt = time.Now().Add(backoff.Delay())
			tp.mu.Lock()
			if !tp.parked.Load() {
				tp.setParkedLocked(parkBackendUnavailable)
			}
			tp.mu.Unlock()
		case outcomeNoTransport:
			select {
			case <-ctx.Done():
				tp.stopReplaying()
				return
			case <-tp.p.transportsChanged():
			}
		}
	}
}

func (tp *tenantPark) stopReplaying() {
	tp.mu.Lock()
	tp.replaying = false
	tp.mu.Unlock()
}

// waitSendable waits until the tenant has a credential the backend has not
// refused, and retryAt has passed; it returns that credential, or false
// when ctx ends.
func (tp *tenantPark) waitSendable(ctx context.Context, retryAt time.Time) (*Value, bool) {
	for {
		cred := tp.slot.src.current.Load()
		tp.mu.Lock()
		usable := cred != nil && (tp.rejected == nil || cred.values[0] != tp.rejected.values[0])
		tp.mu.Unlock()
		wait := time.Until(retryAt)
		if usable && wait <= 0 {
			return cred, true
		}
		if !usable {
			wait = time.Second // a new credential nudges; this is a safety net
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-tp.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// oldest reads the oldest parked export; when there is none, the tenant is
// drained: it is unparked and its replayer ends.
func (tp *tenantPark) oldest(ctx context.Context) ([]byte, bool) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.index.len() > 0 {
		raw, err := tp.p.store.first(ctx, tp.tenant, tp.index)
		if err == nil && raw != nil {
			return raw, true
		}
		tp.p.logger().Error("a parked export could not be read; it is skipped", zap.String("tenant", tp.tenant), zap.Error(err))
		return nil, true // decoded as nothing: popped as failed
	}
	tp.replaying = false
	tp.unparkLocked()
	return nil, false
}

// popOldest removes the oldest export once sent (or refused for good).
func (tp *tenantPark) popOldest(ctx context.Context, size int, sent bool) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	next, err := tp.p.store.pop(context.WithoutCancel(ctx), tp.tenant, tp.index, size)
	if err != nil {
		tp.p.logger().Error("a replayed export could not be removed from the park; it may be sent again", zap.String("tenant", tp.tenant), zap.Error(err))
		return
	}
	tp.index = next
	tp.count.Store(int64(next.len()))
	tp.bytes.Store(next.Bytes)
	attrs := metric.WithAttributeSet(tp.attrs)
	if sent {
		tp.p.t.env.Telemetry.VaultauthReplayedExports.Add(ctx, 1, attrs)
		tp.unparkLocked() // the backend takes this tenant's data again
	} else {
		tp.p.t.env.Telemetry.VaultauthRefusedParkedExports.Add(ctx, 1, attrs)
	}
}

// replayContext is an export's context for the tenant's replays: the
// tenant in the client metadata (as the exporter's own calls carry it),
// marked so the park lets it through.
func replayContext(ctx context.Context, tenant string) context.Context {
	ctx = client.NewContext(ctx, client.Info{Metadata: client.NewMetadata(map[string][]string{identity.TenantMetadataKey: {tenant}})})
	return context.WithValue(ctx, replayKey{}, true)
}

type replayKey struct{}

func isReplay(ctx context.Context) bool { return ctx.Value(replayKey{}) != nil }
