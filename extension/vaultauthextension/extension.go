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

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// vaultAuth is the extension. Start logs in and begins watching the secret
// in the background, so the collector starts even when Vault is down; until
// the first value arrives, exports fail with errNoCredential (retryable).
type vaultAuth struct {
	cfg       *Config
	client    *ClientConfig
	logger    *zap.Logger
	telemetry *telemetry

	current         atomic.Pointer[credential] // nil until the first read
	requireTLS      bool
	errNoCredential error

	session *vaultclient.Session
	watcher *vaultclient.SecretWatcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var (
	_ extension.Extension      = (*vaultAuth)(nil)
	_ extensionauth.HTTPClient = (*vaultAuth)(nil)
	_ extensionauth.GRPCClient = (*vaultAuth)(nil)
)

func newVaultAuth(cfg *Config, set extension.Settings) (*vaultAuth, error) {
	tel, err := newTelemetry(set.TelemetrySettings, set.ID)
	if err != nil {
		return nil, err
	}
	client := cfg.Client.Get()
	return &vaultAuth{
		cfg:             cfg,
		client:          client,
		logger:          set.Logger,
		telemetry:       tel,
		requireTLS:      client.RequireTransportSecurity,
		errNoCredential: fmt.Errorf("%s: no credential from Vault yet (secret %s)", set.ID, client.Secret.Path),
	}, nil
}

func (v *vaultAuth) Start(ctx context.Context, host component.Host) error {
	vc, err := vaultclient.NewClient(ctx, v.cfg.Vault)
	if err != nil {
		return err
	}
	status := newStatusFolder(host)
	report := func(activity string, err error) {
		if err != nil {
			v.telemetry.failed(activity)
		}
		status.report(activity, err)
	}
	v.session = vaultclient.NewSession(vc, v.cfg.Auth, v.cfg.Vault.Retry, v.logger, report)
	v.watcher = vaultclient.NewSecretWatcher(v.session, v.client.Secret, v.client.RefreshInterval,
		v.logger, report, v.setValue)

	runCtx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.wg.Add(2)
	go func() { defer v.wg.Done(); v.session.Run(runCtx) }()
	go func() { defer v.wg.Done(); v.watcher.Run(runCtx) }()
	return nil
}

func (v *vaultAuth) Shutdown(context.Context) error {
	if v.cancel != nil {
		v.cancel()
		v.wg.Wait()
	}
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
	next := newCredential(v.client.Header, v.client.Scheme, val.Data, val.Version)
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
	return &roundTripper{base: base, ext: v}, nil
}

func (v *vaultAuth) PerRPCCredentials() (credentials.PerRPCCredentials, error) {
	return perRPCCredentials{ext: v}, nil
}
