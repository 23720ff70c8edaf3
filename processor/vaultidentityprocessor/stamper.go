package vaultidentityprocessor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor/internal/metadata"
)

// missingStreakWarning is how many requests in a row without any auth context
// make the processor warn (once) that it is probably misplaced.
const missingStreakWarning = 5

var errNoIdentity = consumererror.NewPermanent(errors.New("vaultidentity: the request has no verified Vault identity"))

// stamper holds what every signal's processing shares: where the identity
// comes from, what to stamp, and what to do without one.
type stamper struct {
	cfg      *Config
	logger   *zap.Logger
	provider identity.Provider // from: extension, set in start

	missing       metric.Int64Counter
	missingAttrs  metric.MeasurementOption
	noAuthStreak  atomic.Int64
	warnedNoAuth  atomic.Bool
	stampResource bool
}

func newStamper(cfg *Config, set processor.Settings) (*stamper, error) {
	m := set.MeterProvider.Meter(metadata.ScopeName)
	missing, err := m.Int64Counter("otelcol_vaultidentity_requests_without_identity",
		metric.WithDescription("Requests that carried no verified Vault identity, by the on_missing action taken."),
		metric.WithUnit("{requests}"))
	if err != nil {
		return nil, err
	}
	return &stamper{
		cfg:     cfg,
		logger:  set.Logger,
		missing: missing,
		missingAttrs: metric.WithAttributeSet(attribute.NewSet(
			attribute.String("processor", set.ID.String()), attribute.String("action", cfg.OnMissing))),
		stampResource: cfg.Level == LevelResource,
	}, nil
}

func (s *stamper) start(_ context.Context, host component.Host) error {
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
	return nil
}

// identityOf returns the identity for one request, read once per call.
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
	return identity.FromAuth(auth)
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

// onMissing applies on_missing. proceed says whether to scrub and forward
// the data anyway; err is what to return when not.
func (s *stamper) onMissing(ctx context.Context) (proceed bool, err error) {
	s.missing.Add(ctx, 1, s.missingAttrs)
	switch s.cfg.OnMissing {
	case OnMissingDrop:
		return false, processorhelper.ErrSkipProcessingData
	case OnMissingReject:
		return false, errNoIdentity
	}
	return true, nil
}
