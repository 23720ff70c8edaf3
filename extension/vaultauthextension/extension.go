package vaultauthextension

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// vaultAuth is the extension. Start logs in and begins watching in the
// background, so the collector starts even when Vault is down; until the
// first value arrives, exports fail with errNoCredential (retryable).
type vaultAuth struct {
	cfg       *Config
	id        component.ID
	logger    *zap.Logger
	telemetry *telemetry

	// Client side (nil client when not configured).
	client          *ClientConfig
	current         atomic.Pointer[credential] // nil until the first read
	errNoCredential error

	// Server side (nil when not configured).
	server       *serverAuth
	noServerOnce sync.Once

	session *vaultclient.Session // nil when no login is needed
	watcher *vaultclient.SecretWatcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var (
	_ extension.Extension      = (*vaultAuth)(nil)
	_ extensionauth.HTTPClient = (*vaultAuth)(nil)
	_ extensionauth.GRPCClient = (*vaultAuth)(nil)
	_ extensionauth.Server     = (*vaultAuth)(nil)
	_ identity.Provider        = (*vaultAuth)(nil)
)

func newVaultAuth(cfg *Config, set extension.Settings) (*vaultAuth, error) {
	tel, err := newTelemetry(set.TelemetrySettings, set.ID, cfg.Client.HasValue())
	if err != nil {
		return nil, err
	}
	v := &vaultAuth{cfg: cfg, id: set.ID, logger: set.Logger, telemetry: tel, client: cfg.Client.Get()}
	if v.client != nil {
		v.errNoCredential = fmt.Errorf("%s: no credential from Vault yet (%s)", set.ID, v.clientSecret().Path)
	}
	if cfg.Server.HasValue() {
		v.server = newServerAuth(cfg.Server.Get(), set.Logger)
	}
	return v, nil
}

// clientSecret is what the client side reads: the configured secret, or
// this collector's identity token.
func (v *vaultAuth) clientSecret() vaultclient.SecretConfig {
	if v.client.IdentityToken.HasValue() {
		return vaultclient.SecretConfig{
			Path: "identity/oidc/token/" + v.client.IdentityToken.Get().Role, Key: "token", TTLField: "ttl",
		}
	}
	return v.client.Secret
}

func (v *vaultAuth) Start(ctx context.Context, host component.Host) error {
	runCtx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	status := newStatusFolder(host)
	report := func(activity string, err error) {
		if err != nil {
			v.telemetry.failed(activity)
		}
		status.report(activity, err)
	}

	if v.cfg.needsLogin() {
		vc, err := vaultclient.NewClient(ctx, v.cfg.Vault)
		if err != nil {
			return err
		}
		v.session = vaultclient.NewSession(vc, v.cfg.Auth, v.cfg.Vault.Retry, v.logger, report)
		v.run(func() { v.session.Run(runCtx) })
	}
	if v.client != nil {
		v.watcher = vaultclient.NewSecretWatcher(v.session, v.clientSecret(), v.client.RefreshInterval,
			v.logger, report, v.setValue)
		v.run(func() { v.watcher.Run(runCtx) })
	}
	if v.server != nil {
		srv := v.cfg.Server.Get()
		if srv.IdentityToken.HasValue() {
			hc, err := vaultclient.NewHTTPClient(ctx, v.cfg.Vault)
			if err != nil {
				return err
			}
			v.server.jwt = newJWTVerifier(*srv.IdentityToken.Get(), v.cfg.Vault.ResolvedAddress(), hc)
			v.run(func() { v.server.jwt.prefetch(runCtx) })
		} else {
			v.server.lookup = newLookupVerifier(v.session, *srv.TokenLookup.Get(), srv.CacheTTL)
		}
	}
	if v.session == nil {
		status.report("start", nil) // nothing to log in to: OK now
	}
	return nil
}

func (v *vaultAuth) run(f func()) {
	v.wg.Add(1)
	go func() { defer v.wg.Done(); f() }()
}

func (v *vaultAuth) Shutdown(context.Context) error {
	if v.cancel != nil {
		v.cancel()
		v.wg.Wait()
	}
	v.telemetry.unregister()
	return nil
}

// setValue swaps in a new value (or none, when the last one expired).
func (v *vaultAuth) setValue(val vaultclient.Value) {
	if val.Data == "" {
		v.current.Store(nil)
		v.telemetry.version.Store(0)
		v.telemetry.expires.Store(0)
		return
	}
	next := newCredential(v.client.header(), v.client.scheme(), val.Data, val.Version)
	// A re-read lease renews the same value: only a new value is a rotation.
	if old := v.current.Swap(next); old != nil && old.values[0] != next.values[0] {
		v.telemetry.rotations.Add(context.Background(), 1, metric.WithAttributeSet(v.telemetry.attrs))
	}
	v.telemetry.version.Store(int64(val.Version))
	if val.Expires.IsZero() {
		v.telemetry.expires.Store(0)
	} else {
		v.telemetry.expires.Store(val.Expires.Unix())
	}
}

// backendRejected is called when the backend answers 401/403: the value may
// have been rotated in Vault before refresh_interval noticed.
func (v *vaultAuth) backendRejected() {
	if v.watcher != nil {
		v.watcher.RefreshNow()
	}
}

func (v *vaultAuth) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	if v.client == nil {
		return nil, fmt.Errorf("%s has no client block: it cannot authenticate exporters", v.id)
	}
	return &roundTripper{base: base, ext: v}, nil
}

func (v *vaultAuth) PerRPCCredentials() (credentials.PerRPCCredentials, error) {
	if v.client == nil {
		return nil, fmt.Errorf("%s has no client block: it cannot authenticate exporters", v.id)
	}
	return perRPCCredentials{ext: v}, nil
}

func (v *vaultAuth) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	if v.server == nil {
		v.noServerOnce.Do(func() {
			v.logger.Error("used as a receiver authenticator without a server block; rejecting every request")
		})
		return ctx, errUnauthenticated
	}
	return v.server.Authenticate(ctx, sources)
}

// VaultIdentity is this collector's own Vault identity (identity.Provider).
func (v *vaultAuth) VaultIdentity() (*identity.Identity, bool) {
	if v.session == nil {
		return nil, false
	}
	return v.session.Identity()
}
