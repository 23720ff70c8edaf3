package vaultauthextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
)

// telemetry records the instruments declared in metadata.yaml. Every data
// point carries extension=<component id>, as the Collector's own components
// carry exporter=, processor=, receiver=: Collector v0.165.0 adds its
// otelcol.component.id to metrics only behind the alpha feature gate
// telemetry.newPipelineTelemetry (off by default), so without it two
// instances would collide. The values of the gauges live
// with what they describe (the credential source, the session), which
// register the callbacks.
type telemetry struct {
	*metadata.TelemetryBuilder
	id attribute.KeyValue
	// Options of the per-request counter, as slices built once: passing
	// them with ... costs no allocation, where a variadic argument list
	// escapes into the instrument's interface call on every request.
	acceptedCached, acceptedVerified []metric.AddOption
}

func newTelemetry(set component.TelemetrySettings, id component.ID) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	t := &telemetry{TelemetryBuilder: tb, id: attribute.String("extension", id.String())}
	t.acceptedCached = []metric.AddOption{t.outcome("accepted", "cached")}
	t.acceptedVerified = []metric.AddOption{t.outcome("accepted", "verified")}
	return t, nil
}

// attrs is the instance attribute with kvs.
func (t *telemetry) attrs(kvs ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append([]attribute.KeyValue{t.id}, kvs...)...)
}

func (t *telemetry) outcome(o, reason string) metric.MeasurementOption {
	return metric.WithAttributeSet(t.attrs(attribute.String("outcome", o), attribute.String("reason", reason)))
}

func (t *telemetry) failed(activity, tenant string) {
	t.VaultauthVaultRequestFailures.Add(context.Background(), 1,
		metric.WithAttributeSet(t.attrs(attribute.String("activity", activity), attribute.String("tenant", tenant))))
}

// accepted counts an accepted request, from the cache or newly verified.
func (t *telemetry) accepted(cached bool) {
	if cached {
		t.VaultauthServerRequests.Add(context.Background(), 1, t.acceptedCached...)
		return
	}
	t.VaultauthServerRequests.Add(context.Background(), 1, t.acceptedVerified...)
}
