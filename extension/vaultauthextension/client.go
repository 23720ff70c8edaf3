package vaultauthextension

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// clientAuth is an exporter authenticator: it reads a credential from Vault
// (a secret, or this collector's identity token), keeps it fresh, and sends
// it with every export. Until the first value arrives, exports fail with a
// retryable error.
type clientAuth struct {
	*vaultLink
	cfg    *ClientConfig
	source credentialSource // one secret, or one per tenant
	guard  transportGuard
}

var (
	_ extensionauth.HTTPClient = (*clientAuth)(nil)
	_ extensionauth.GRPCClient = (*clientAuth)(nil)
	_ identity.CredentialGate  = (*clientAuth)(nil)
)

// CredentialReady says whether an export of ctx's data has its credential
// now (vaultidentity's tenant_credentials): nil, or the error the export
// would get.
func (c *clientAuth) CredentialReady(ctx context.Context) error {
	if t, ok := c.source.(*tenantSources); ok {
		return t.admit(ctx)
	}
	_, err := c.source.credential(ctx)
	return err
}

func newClientAuth(link *vaultLink, cfg *ClientConfig) *clientAuth {
	c := &clientAuth{
		vaultLink: link,
		cfg:       cfg,
		guard:     transportGuard{id: link.id.String(), require: cfg.RequireTransportSecurity},
	}
	if cfg.Tenants.HasValue() {
		c.source = newTenantSources(c)
	} else {
		c.source = newSecretSource(link.id, cfg, "", link.telemetry, link.logger)
	}
	return c
}

func (c *clientAuth) Start(ctx context.Context, host component.Host) error {
	return c.start(ctx, host, func(runCtx context.Context) error {
		if tenants, ok := c.source.(*tenantSources); ok {
			return tenants.start(ctx, runCtx, host)
		}
		single := c.source.(*secretSource)
		w := vaultclient.NewSecretWatcher(c.vault, c.conf.Vault.Retry, c.cfg.secret(), c.cfg.RefreshInterval,
			c.logger, c.report, single.set)
		single.watcher = w
		c.run(func() { w.Run(runCtx) })
		return single.registerGauges(c.telemetry)
	})
}

// Shutdown stops the watching and replays, then closes the park.
func (c *clientAuth) Shutdown(ctx context.Context) error {
	err := c.vaultLink.Shutdown(ctx)
	if t, ok := c.source.(*tenantSources); ok {
		t.close(ctx)
	}
	return err
}

// Dependencies makes the Collector start the park's storage extension
// first (extensioncapabilities.Dependent).
func (c *clientAuth) Dependencies() []component.ID {
	if c.cfg.Tenants.HasValue() {
		if id := c.cfg.Tenants.Get().Park.Storage; id != nil {
			return []component.ID{*id}
		}
	}
	return nil
}

func (c *clientAuth) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	return &roundTripper{base: base, source: c.source, guard: c.guard}, nil
}

func (c *clientAuth) PerRPCCredentials() (credentials.PerRPCCredentials, error) {
	return perRPCCredentials{source: c.source, guard: c.guard}, nil
}

// secretSource is one secret's credential: the request path loads one
// atomic pointer. The watcher swaps in each new value.
type secretSource struct {
	header, scheme string
	tenant         string // "" for the single secret
	attrs          attribute.Set
	telemetry      *telemetry
	logger         *zap.Logger
	errMissing     error // what an export gets before the first value

	current atomic.Pointer[credential] // nil until the first read, or after a lease ended
	watcher *vaultclient.SecretWatcher
}

func newSecretSource(id component.ID, cfg *ClientConfig, tenant string, tel *telemetry, logger *zap.Logger) *secretSource {
	s := &secretSource{
		header: cfg.header(), scheme: cfg.scheme(), tenant: tenant, telemetry: tel, logger: logger,
		attrs: tel.attrs(attribute.String("tenant", tenant)),
	}
	// Unavailable, so the exporter retries instead of dropping the data.
	if !cfg.Tenants.HasValue() {
		s.errMissing = status.Error(codes.Unavailable, fmt.Sprintf("%s: no credential from Vault yet (%s)", id, cfg.secret().Path))
	}
	return s
}

func (s *secretSource) credential(context.Context) (*credential, error) {
	if c := s.current.Load(); c != nil {
		return c, nil
	}
	return nil, s.errMissing
}

// rejected asks for a re-read: the value may have been rotated in Vault
// before refresh_interval noticed.
func (s *secretSource) rejected(context.Context) {
	if s.watcher != nil {
		s.watcher.RefreshNow()
	}
}

// set swaps in a new value (or none, when the last one expired).
func (s *secretSource) set(val vaultclient.Value) {
	if val.Data == "" {
		s.current.Store(nil)
		return
	}
	next := newCredential(s.header, s.scheme, val.Data)
	next.version, next.created, next.expires = val.Version, val.Created, val.Expires
	// A re-read lease renews the same value: only a new value is a rotation.
	if old := s.current.Swap(next); old != nil && old.values[0] != next.values[0] {
		s.telemetry.VaultauthRotations.Add(context.Background(), 1, metric.WithAttributeSet(s.attrs))
	}
}

// registerGauges reports the credential in use: its version, the age of
// the version, its expiry, and whether there is one.
func (s *secretSource) registerGauges(tel *telemetry) error {
	if err := tel.RegisterVaultauthSecretVersionCallback(func(_ context.Context, o metric.Int64Observer) error {
		s.observeVersion(o)
		return nil
	}); err != nil {
		return err
	}
	if err := tel.RegisterVaultauthSecretVersionAgeSecondsCallback(func(_ context.Context, o metric.Float64Observer) error {
		s.observeAge(o)
		return nil
	}); err != nil {
		return err
	}
	if err := tel.RegisterVaultauthCredentialExpirySecondsCallback(func(_ context.Context, o metric.Float64Observer) error {
		s.observeExpiry(o)
		return nil
	}); err != nil {
		return err
	}
	return tel.RegisterVaultauthCredentialAvailableCallback(func(_ context.Context, o metric.Int64Observer) error {
		s.observeAvailable(o)
		return nil
	})
}

func (s *secretSource) observeVersion(o metric.Int64Observer) {
	version := 0
	if c := s.current.Load(); c != nil {
		version = c.version
	}
	o.Observe(int64(version), metric.WithAttributeSet(s.attrs))
}

func (s *secretSource) observeAge(o metric.Float64Observer) {
	if c := s.current.Load(); c != nil && !c.created.IsZero() {
		o.Observe(time.Since(c.created).Seconds(), metric.WithAttributeSet(s.attrs))
	}
}

func (s *secretSource) observeExpiry(o metric.Float64Observer) {
	if c := s.current.Load(); c != nil && !c.expires.IsZero() {
		o.Observe(time.Until(c.expires).Seconds(), metric.WithAttributeSet(s.attrs))
	}
}

func (s *secretSource) observeAvailable(o metric.Int64Observer) {
	var v int64
	if s.current.Load() != nil {
		v = 1
	}
	o.Observe(v, metric.WithAttributeSet(s.attrs))
}
