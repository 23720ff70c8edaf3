package vaultauthextension

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/guard"
	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/source"
	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/status"
	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"

	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// vaultLink is what every vaultauth instance has, whatever its job: its
// Vault login (when it has one), the status it reports, its telemetry, its
// background work, and this collector's own identity. Start logs in and
// begins watching in the background, so the collector starts even when
// Vault is down.
type vaultLink struct {
	id        component.ID
	conf      *Config
	logger    *zap.Logger
	telemetry *telemetry.Telemetry
	guard     *guard.Guard
	job       job

	session *vaultclient.Session // nil without a login
	// vault is the seam to Vault the jobs use (the session); unit tests of
	// caching, routing and status put a fake here.
	vault  vaultclient.Vault
	status *status.Folder // set in start
	// events are the audit events of this instance, for vaultaudit receivers.
	events auditevent.Bus
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ identity.Provider              = (*vaultLink)(nil)
	_ auditevent.Source              = (*vaultLink)(nil)
	_ extensionmiddleware.HTTPServer = (*vaultLink)(nil)
	_ extensionmiddleware.GRPCServer = (*vaultLink)(nil)
)

func newVaultLink(cfg *Config, set extension.Settings, j job) (*vaultLink, error) {
	tel, err := telemetry.New(set.TelemetrySettings, set.ID)
	if err != nil {
		return nil, err
	}
	return &vaultLink{
		id: set.ID, conf: cfg, logger: set.Logger, telemetry: tel, job: j,
		guard: guard.New(cfg.Guard.settings(), tel, set.Logger),
	}, nil
}

// start logs in (when the instance has a login), then starts the job's own
// background work with then.
func (l *vaultLink) start(ctx context.Context, host component.Host, then func(runCtx context.Context) error) error {
	runCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.status = status.NewFolder(host)
	if err := l.guard.RegisterGauge(); err != nil {
		return err
	}
	if l.conf.hasLogin() {
		vc, err := vaultclient.NewClient(ctx, l.conf.Vault)
		if err != nil {
			return err
		}
		l.session = vaultclient.NewSession(vc, l.authConfig(), l.conf.Vault, l.logger, l.report)
		device := ""
		if l.conf.Audit.HasValue() {
			device = strings.Trim(l.conf.Audit.Get().Device, "/")
		}
		l.session.Audit(device, &l.events, l.id.String())
		l.vault = l.session
		l.run(func() { l.session.Run(runCtx) })
		if err := l.telemetry.RegisterVaultauthTokenTTLSecondsCallback(func(_ context.Context, o metric.Float64Observer) error {
			if exp := l.session.TokenExpiry(); !exp.IsZero() {
				o.Observe(time.Until(exp).Seconds(), metric.WithAttributeSet(l.telemetry.Attrs()))
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if then != nil {
		if err := then(runCtx); err != nil {
			return err
		}
	}
	if l.session == nil {
		l.status.Report("start", nil) // nothing to log in to: OK now
	}
	return nil
}

func (l *vaultLink) authConfig() vaultclient.AuthConfig {
	if l.conf.Auth.HasValue() {
		return *l.conf.Auth.Get()
	}
	return vaultclient.DefaultAuthConfig()
}

// report folds the health of one activity into the status, and counts failures.
func (l *vaultLink) report(activity string, err error) {
	if err != nil {
		l.telemetry.Failed(activity, "")
	}
	l.status.Report(activity, err)
}

// env is what the client side's sources need of the instance, once started.
func (l *vaultLink) env() source.Env {
	return source.Env{Vault: l.vault, Retry: l.conf.Vault.Retry, Logger: l.logger, Telemetry: l.telemetry, Status: l.status, Run: l.run,
		Events: &l.events, Component: l.id.String()}
}

// GetHTTPHandler guards an HTTP receiver that lists this instance in its
// middlewares (extensionmiddleware.HTTPServer; internal/guard).
func (l *vaultLink) GetHTTPHandler(context.Context) (extensionmiddleware.WrapHTTPHandlerFunc, error) {
	return l.guard.WrapHTTP, nil
}

// GetGRPCServerOptions guards a gRPC receiver that lists this instance in
// its middlewares (extensionmiddleware.GRPCServer; internal/guard).
func (l *vaultLink) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	return l.guard.GRPCServerOptions(), nil
}

// SubscribeAuditEvents hands this instance's audit events to f
// (auditevent.Source, for the vaultaudit receiver).
func (l *vaultLink) SubscribeAuditEvents(f func(auditevent.Event)) func() {
	return l.events.Subscribe(f)
}

func (l *vaultLink) run(f func()) {
	l.wg.Add(1)
	go func() { defer l.wg.Done(); f() }()
}

func (l *vaultLink) Shutdown(context.Context) error {
	if l.cancel != nil {
		l.cancel()
		l.wg.Wait()
	}
	l.telemetry.Shutdown()
	return nil
}

// RequireAttributes makes this collector's own identity carry names
// (identity.Provider).
func (l *vaultLink) RequireAttributes(names []string) error {
	if l.session == nil {
		return fmt.Errorf("%s has no auth block: it does not log in to Vault, so it knows no identity of this collector's", l.id)
	}
	return l.session.RequireAttributes(names)
}

// VaultIdentity is this collector's own Vault identity (identity.Provider).
func (l *vaultLink) VaultIdentity() (*identity.Identity, bool) {
	if l.session == nil {
		return nil, false
	}
	return l.session.VaultIdentity()
}
