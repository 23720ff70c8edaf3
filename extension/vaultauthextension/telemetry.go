package vaultauthextension

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
)

// telemetry is the extension's internal telemetry, on the collector's meter.
type telemetry struct {
	rotations metric.Int64Counter
	failures  metric.Int64Counter
	attrs     attribute.Set // the extension's id, to tell instances apart

	version atomic.Int64 // KV v2 version in use, 0 if none
	expires atomic.Int64 // unix seconds when the credential in use expires, 0 if never

	unregister func()
}

func newTelemetry(set component.TelemetrySettings, id component.ID, hasClient bool) (*telemetry, error) {
	m := set.MeterProvider.Meter(metadata.ScopeName)
	t := &telemetry{attrs: attribute.NewSet(attribute.String("extension", id.String())), unregister: func() {}}
	var err error
	if t.rotations, err = m.Int64Counter("otelcol_vaultauth_rotations",
		metric.WithDescription("Times the credential sent to the backend changed to a new value."),
		metric.WithUnit("{rotations}")); err != nil {
		return nil, err
	}
	if t.failures, err = m.Int64Counter("otelcol_vaultauth_vault_request_failures",
		metric.WithDescription("Vault requests that failed, by activity (login, secret read)."),
		metric.WithUnit("{requests}")); err != nil {
		return nil, err
	}
	if !hasClient {
		return t, nil
	}
	version, err := m.Int64ObservableGauge("otelcol_vaultauth_secret_version",
		metric.WithDescription("KV v2 version of the secret in use (0 when none or not KV v2)."),
		metric.WithUnit("{version}"))
	if err != nil {
		return nil, err
	}
	expiry, err := m.Float64ObservableGauge("otelcol_vaultauth_credential_expiry_seconds",
		metric.WithDescription("Seconds until the credential in use expires (its lease ends); absent when it does not expire."),
		metric.WithUnit("s"))
	if err != nil {
		return nil, err
	}
	// Registered apart from the instruments: several vaultauth instances share
	// them, and each must observe its own values.
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(version, t.version.Load(), metric.WithAttributeSet(t.attrs))
		if exp := t.expires.Load(); exp != 0 {
			o.ObserveFloat64(expiry, time.Until(time.Unix(exp, 0)).Seconds(), metric.WithAttributeSet(t.attrs))
		}
		return nil
	}, version, expiry)
	if err != nil {
		return nil, err
	}
	t.unregister = func() { _ = reg.Unregister() }
	return t, nil
}

func (t *telemetry) failed(activity string) {
	t.failures.Add(context.Background(), 1, metric.WithAttributeSet(t.attrs),
		metric.WithAttributes(attribute.String("activity", activity)))
}
