package source

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// Secret is one secret's credential: the request path loads one atomic
// pointer. The watcher swaps in each new value.
type Secret struct {
	header, scheme string
	tenant         string // "" for the single secret
	attrs          attribute.Set
	telemetry      *telemetry.Telemetry
	errMissing     error // what an export gets before the first value

	current atomic.Pointer[Value] // nil until the first read, or after a lease ended
	watcher *vaultclient.SecretWatcher

	// Audit events of each new value (set by audited before the watcher runs).
	events    *auditevent.Bus
	component string
	path      string
}

// audited makes set tell env's audit events about each new value of path.
func (s *Secret) audited(env Env, path string) {
	s.events, s.component, s.path = env.Events, env.Component, path
}

func newSecret(s Settings, tenant string, tel *telemetry.Telemetry, errMissing error) *Secret {
	return &Secret{
		header: s.Header, scheme: s.Scheme, tenant: tenant, telemetry: tel, errMissing: errMissing,
		attrs: tel.Attrs(attribute.String("tenant", tenant)),
	}
}

// rejected asks for a re-read: the value may have been rotated in Vault
// before refresh_interval noticed.
func (s *Secret) rejected() {
	if s.watcher != nil {
		s.watcher.RefreshNow()
	}
}

// set swaps in a new value (or none, when the last one expired).
func (s *Secret) set(val vaultclient.Value) {
	if val.Data == "" {
		s.current.Store(nil)
		return
	}
	next := newCredential(s.header, s.scheme, val.Data)
	next.version, next.created, next.expires = val.Version, val.Created, val.Expires
	// A re-read lease renews the same value: only a new value is a rotation.
	old := s.current.Swap(next)
	if old != nil && old.values[0] != next.values[0] {
		s.telemetry.VaultauthRotations.Add(context.Background(), 1, metric.WithAttributeSet(s.attrs))
	}
	if old == nil || old.values[0] != next.values[0] || old.version != next.version {
		s.emitChanged(val)
	}
}

// emitChanged tells the audit events which Vault request gave this
// collector the credential it now exports with, and its provenance.
func (s *Secret) emitChanged(val vaultclient.Value) {
	if s.events == nil || !s.events.Active() {
		return
	}
	attrs := []auditevent.Attr{
		auditevent.String(auditevent.Component, s.component),
		auditevent.String(auditevent.SecretPath, s.path),
		auditevent.String(auditevent.RequestID, val.RequestID),
	}
	if s.tenant != "" {
		attrs = append(attrs, auditevent.String("vault.tenant", s.tenant))
	}
	if val.Version > 0 {
		attrs = append(attrs, auditevent.Int(auditevent.SecretVersion, int64(val.Version)))
	}
	if !val.Created.IsZero() {
		attrs = append(attrs, auditevent.String(auditevent.SecretCreated, val.Created.UTC().Format(time.RFC3339Nano)))
	}
	if val.RotatedBy != "" {
		attrs = append(attrs, auditevent.String(auditevent.RotatedBy, val.RotatedBy))
	}
	if val.Reason != "" {
		attrs = append(attrs, auditevent.String(auditevent.RotationReason, val.Reason))
	}
	s.events.Emit(auditevent.Event{Name: auditevent.ExportCredentialChanged, Attrs: attrs})
}

func (s *Secret) observeVersion(o metric.Int64Observer) {
	version := 0
	if c := s.current.Load(); c != nil {
		version = c.version
	}
	o.Observe(int64(version), metric.WithAttributeSet(s.attrs))
}

func (s *Secret) observeAge(o metric.Float64Observer) {
	if c := s.current.Load(); c != nil && !c.created.IsZero() {
		o.Observe(time.Since(c.created).Seconds(), metric.WithAttributeSet(s.attrs))
	}
}

func (s *Secret) observeExpiry(o metric.Float64Observer) {
	if c := s.current.Load(); c != nil && !c.expires.IsZero() {
		o.Observe(time.Until(c.expires).Seconds(), metric.WithAttributeSet(s.attrs))
	}
}

func (s *Secret) observeAvailable(o metric.Int64Observer) {
	var v int64
	if s.current.Load() != nil {
		v = 1
	}
	o.Observe(v, metric.WithAttributeSet(s.attrs))
}

// single is the source of one secret (or this collector's identity token).
type single struct {
	id     component.ID
	s      Settings
	secret *Secret // made at Start, when the telemetry is known
}

func newSingle(id component.ID, s Settings) *single { return &single{id: id, s: s} }

func (o *single) Start(_, runCtx context.Context, _ component.Host, env Env) error {
	// Unavailable, so the exporter retries instead of dropping the data.
	errMissing := status.Error(codes.Unavailable, fmt.Sprintf("%s: no credential from Vault yet (%s)", o.id, o.s.Secret.Path))
	o.secret = newSecret(o.s, "", env.Telemetry, errMissing)
	o.secret.audited(env, o.s.Secret.Path)
	report := func(activity string, err error) {
		if err != nil {
			env.Telemetry.Failed(activity, "")
		}
		env.Status.Report(activity, err)
	}
	w := vaultclient.NewSecretWatcher(env.Vault, env.Retry, o.s.Secret, o.s.RefreshInterval, env.Logger, report, o.secret.set)
	o.secret.watcher = w
	env.Run(func() { w.Run(runCtx) })
	return nil
}

func (o *single) Credential(context.Context) (*Value, error) {
	if o.secret == nil {
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("%s: not started", o.id))
	}
	if c := o.secret.current.Load(); c != nil {
		return c, nil
	}
	return nil, o.secret.errMissing
}

func (o *single) Admit(ctx context.Context) error {
	_, err := o.Credential(ctx)
	return err
}

func (o *single) Rejected(context.Context) {
	if o.secret != nil {
		o.secret.rejected()
	}
}

func (o *single) Close(context.Context) {}

func (o *single) each(f func(*Secret)) {
	if o.secret != nil {
		f(o.secret)
	}
}
