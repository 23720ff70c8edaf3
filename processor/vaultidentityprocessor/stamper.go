package vaultidentityprocessor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/ratelimit"
	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor/internal/metadata"
)

// missingStreakWarning is how many requests in a row without any auth context
// make the processor warn (once) that it is probably misplaced.
const missingStreakWarning = 5

var (
	// A request without a verified identity: retrying it cannot help.
	errNoIdentity = consumererror.NewPermanent(errors.New("vaultidentity: the request has no verified Vault identity"))
	// This collector's own identity is not known yet (Vault login pending):
	// retryable, so the sender or the exporter queue holds the data.
	errNoOwnIdentity = errors.New("vaultidentity: this collector's Vault identity is not known yet (login pending)")
	// The request's tenant has no export credential yet: retryable (gRPC
	// Unavailable, HTTP 503), and says nothing of paths or tenants to the
	// sender.
	errTenantHeld = status.Error(codes.Unavailable, "vaultidentity: the export credential for this sender's tenant is not ready; retry later")
	// The request can never be exported (it names no tenant: the receiver's
	// authenticator has no tenant block): permanent, so nobody retries it.
	errTenantUnroutable = consumererror.NewPermanent(errors.New("vaultidentity: this request cannot be exported with any tenant's credential"))
	// A value nests deeper than OTLP protobuf decoders accept: refused for
	// good, to its sender only, before a batch merges it with others' data
	// that the next hop would then refuse with it.
	// InvalidArgument, so receivers answer 400 (HTTP) or InvalidArgument (gRPC).
	// The request's tenant is over its fair share of what the pipeline can
	// take now: retryable, so its data waits at its sender (fair_share).
	errOverShare = status.Error(codes.Unavailable, "vaultidentity: this sender's share of what the gateway can export now is used up; retry later")
	// The request's tenant is over its tenant_limits rate: retryable, so its
	// data waits at its sender.
	errOverLimit    = status.Error(codes.Unavailable, "vaultidentity: this sender is over its rate limit at this gateway; retry later")
	errUnexportable = consumererror.NewPermanent(status.Errorf(codes.InvalidArgument, "vaultidentity: an attribute or log body "+
		"nests deeper than OTLP protobuf decoders accept (%d nested messages); the request is refused", protobufRecursionLimit))
)

// heldLogEvery is the least time between two warnings about held requests.
const heldLogEvery = 10 * time.Second

// stamper holds what every signal's processing shares: where the identity
// comes from, what to stamp, and what to do without one.
type stamper struct {
	cfg       *Config
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	action    metric.MeasurementOption // on_missing, as the counter's attribute
	provider  identity.Provider        // from: extension, set in start
	gate      identity.CredentialGate  // tenant_credentials, set in start
	held      metric.MeasurementOption // processor=<id>
	warnHeld  ratelimit.Every          // the held-request warning
	warnDeep  ratelimit.Every          // the unexportable-request warning
	warnShare ratelimit.Every          // the over-share warning
	warnLimit ratelimit.Every          // the over-limit warning
	fair      *fairShare               // fair_share; nil when off
	limits    *tenantLimiter           // tenant_limits; nil when off
	// countItems: a request's items are counted (fair_share, tenant_limits).
	countItems bool
	vouchers   *vouchers // vouchers; nil when none

	noAuthStreak  atomic.Int64
	warnedNoAuth  atomic.Bool
	stampResource bool
}

func newStamper(cfg *Config, set processor.Settings) (*stamper, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	var fair *fairShare
	if cfg.FairShare.Enabled && cfg.From == FromAuth {
		fair = newFairShare(cfg.FairShare.Window)
	}
	var limits *tenantLimiter
	if cfg.TenantLimits.enabled() && cfg.From == FromAuth {
		limits = newTenantLimiter(cfg.TenantLimits)
	}
	return &stamper{
		cfg: cfg, logger: set.Logger, telemetry: tb, stampResource: cfg.Level == LevelResource, vouchers: newVouchers(cfg),
		fair: fair, limits: limits, countItems: fair != nil || limits != nil,
		// processor=<id>, as the Collector's own processor metrics say it.
		action: metric.WithAttributeSet(attribute.NewSet(
			attribute.String("action", cfg.OnMissing), attribute.String("processor", set.ID.String()))),
		held: metric.WithAttributeSet(attribute.NewSet(attribute.String("processor", set.ID.String()))),
	}, nil
}

func (s *stamper) start(_ context.Context, host component.Host) error {
	if id := s.cfg.TenantCredentials; id != (component.ID{}) {
		ext, ok := host.GetExtensions()[id]
		if !ok {
			return fmt.Errorf("tenant_credentials: extension %q not found: add it to service.extensions", id)
		}
		if s.gate, ok = ext.(identity.CredentialGate); !ok {
			return fmt.Errorf("tenant_credentials: extension %q sends no credential (use a vaultauth extension with a client block)", id)
		}
	}
	if s.cfg.From != FromExtension {
		return nil
	}
	ext, ok := host.GetExtensions()[s.cfg.Extension]
	if !ok {
		return fmt.Errorf("extension %q not found: add it to service.extensions", s.cfg.Extension)
	}
	if s.provider, ok = ext.(identity.Provider); !ok {
		return fmt.Errorf("extension %q does not provide a Vault identity (use a vaultauth extension)", s.cfg.Extension)
	}
	if err := s.provider.RequireAttributes(s.cfg.Attributes); err != nil {
		return fmt.Errorf("extension %q: %w", s.cfg.Extension, err)
	}
	return nil
}

func (s *stamper) shutdown(context.Context) error {
	s.telemetry.Shutdown()
	return nil
}

// none is the empty stamp: applying it only scrubs. Never written.
var none stamp

// stamps returns what to apply to resources and to items (spans, log
// records, data points) for the request in ctx, of n items: one of them is
// empty. The identity is read once per request. err is what to return
// instead, per on_missing, when the request has no identity; or when its
// tenant has no credential ready, or is over its limit or fair share.
func (s *stamper) stamps(ctx context.Context, st *stamp, n int) (resource, item *stamp, err error) {
	id, ok := s.identityOf(ctx)
	if !ok {
		if err := s.onMissing(ctx); err != nil {
			return nil, nil, err
		}
		id = nil
	}
	if s.gate != nil && id != nil {
		if err := s.gate.CredentialReady(ctx); err != nil {
			return nil, nil, s.hold(ctx, err)
		}
	}
	if s.limits != nil && id != nil {
		if tenant := shareKey(id); !s.limits.admit(tenant, n) {
			return nil, nil, s.overLimit(ctx, tenant)
		}
	}
	if s.fair != nil && id != nil && !s.fair.admit(shareKey(id), n) {
		return nil, nil, s.overShare(ctx)
	}
	s.stampFor(id, st)
	if s.stampResource {
		return st, &none, nil
	}
	return &none, st, nil
}

// identityOf returns the identity for one request.
func (s *stamper) identityOf(ctx context.Context) (*identity.Identity, bool) {
	if s.provider != nil {
		return s.provider.VaultIdentity()
	}
	auth := client.FromContext(ctx).Auth
	if auth == nil {
		s.noAuthSeen()
		return nil, false
	}
	s.noAuthStreak.Store(0)
	return identity.FromAuth(auth, s.cfg.Attributes)
}

// noAuthSeen warns once when requests keep arriving with no auth context at
// all: the processor runs after batch (which drops it) or the receiver has
// no authenticator.
func (s *stamper) noAuthSeen() {
	if s.noAuthStreak.Add(1) == missingStreakWarning && s.warnedNoAuth.CompareAndSwap(false, true) {
		s.logger.Warn("vaultidentity saw no auth context on consecutive requests: place it before the batch processor, "+
			"and give the receiver an authenticator (auth: {authenticator: vaultauth/...})",
			zap.Int("requests", missingStreakWarning))
	}
}

// onMissing applies on_missing to a request without an identity: nil means
// scrub and forward it unstamped.
func (s *stamper) onMissing(ctx context.Context) error {
	s.telemetry.VaultidentityRequestsWithoutIdentity.Add(ctx, 1, s.action)
	switch s.cfg.OnMissing {
	case OnMissingDrop:
		return processorhelper.ErrSkipProcessingData
	case OnMissingReject:
		if s.provider != nil {
			return errNoOwnIdentity
		}
		return errNoIdentity
	}
	return nil
}

// unexportable refuses a request holding a value nested too deep to export,
// and says so at the collector (at most every heldLogEvery).
func (s *stamper) unexportable(ctx context.Context) error {
	s.telemetry.VaultidentityRequestsUnexportable.Add(ctx, 1, s.held)
	if s.warnDeep.Allow(heldLogEvery) {
		s.logger.Warn("refused a request whose values nest deeper than OTLP protobuf decoders accept: "+
			"merged into a batch, it would make the next hop refuse every sender's data in it",
			zap.Int("limit", protobufRecursionLimit))
	}
	return errUnexportable
}

// overShare refuses a request whose tenant is over its fair share, and
// says so at the gateway (at most every heldLogEvery).
func (s *stamper) overShare(ctx context.Context) error {
	s.telemetry.VaultidentityRequestsOverShare.Add(ctx, 1, s.held)
	if s.warnShare.Allow(heldLogEvery) {
		s.logger.Warn("the pipeline cannot take every sender's data: holding requests of senders over their fair share at their senders",
			zap.Float64("share_items_per_window", s.fair.currentLevel()), zap.Duration("window", s.cfg.FairShare.Window))
	}
	return errOverShare
}

// overLimit refuses a request whose tenant is over its tenant_limits rate,
// and names the tenant at the gateway (at most every heldLogEvery).
func (s *stamper) overLimit(ctx context.Context, tenant string) error {
	s.telemetry.VaultidentityRequestsOverLimit.Add(ctx, 1, s.held)
	if s.warnLimit.Allow(heldLogEvery) {
		s.logger.Warn("holding requests of a tenant over its rate limit at its senders (tenant_limits)",
			zap.String("tenant", tenant), zap.Float64("items_per_second", s.limits.limitOf(tenant).perSecond))
	}
	return errOverLimit
}

// hold refuses a request whose tenant has no export credential yet, and
// says why at the gateway (at most every heldLogEvery), never to the sender.
func (s *stamper) hold(ctx context.Context, why error) error {
	permanent := consumererror.IsPermanent(why)
	if !permanent {
		s.telemetry.VaultidentityRequestsHeld.Add(ctx, 1, s.held)
	}
	if s.warnHeld.Allow(heldLogEvery) {
		if permanent {
			s.logger.Error("refusing requests that no tenant's credential may carry", zap.Error(why))
		} else {
			s.logger.Warn("holding requests at their senders: the export credential for their tenant is not ready", zap.Error(why))
		}
	}
	if permanent {
		return errTenantUnroutable
	}
	return errTenantHeld
}
