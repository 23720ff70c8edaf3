// Package telemetry records the extension's instruments (declared in
// metadata.yaml) with the instance attribute every data point carries.
package telemetry // import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
)

// Telemetry records the instruments declared in metadata.yaml. Every data
// point carries extension=<component id>, as the Collector's own components
// carry exporter=, processor=, receiver=: Collector v0.165.0 adds its
// otelcol.component.id to metrics only behind the alpha feature gate
// telemetry.newPipelineTelemetry (off by default), so without it two
// instances would collide. The values of the gauges live with what they
// describe (the credential sources, the session), which register the
// callbacks.
type Telemetry struct {
	*metadata.TelemetryBuilder
	id attribute.KeyValue
	// Options of the per-request counter, as slices built once: passing
	// them with ... costs no allocation, where a variadic argument list
	// escapes into the instrument's interface call on every request.
	acceptedCached, acceptedVerified []metric.AddOption
}

// New builds the instruments of instance id.
func New(set component.TelemetrySettings, id component.ID) (*Telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{TelemetryBuilder: tb, id: attribute.String("extension", id.String())}
	t.acceptedCached = []metric.AddOption{t.Outcome("accepted", "cached")}
	t.acceptedVerified = []metric.AddOption{t.Outcome("accepted", "verified")}
	return t, nil
}

// Attrs is the instance attribute with kvs.
func (t *Telemetry) Attrs(kvs ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append([]attribute.KeyValue{t.id}, kvs...)...)
}

// Outcome is the attribute set of a server-side request outcome.
func (t *Telemetry) Outcome(o, reason string) metric.MeasurementOption {
	return metric.WithAttributeSet(t.Attrs(attribute.String("outcome", o), attribute.String("reason", reason)))
}

// Failed counts a failed Vault call of activity (for tenant, "" if none).
func (t *Telemetry) Failed(activity, tenant string) {
	t.VaultauthVaultRequestFailures.Add(context.Background(), 1,
		metric.WithAttributeSet(t.Attrs(attribute.String("activity", activity), attribute.String("tenant", tenant))))
}

// Accepted counts an accepted request, from the cache or newly verified.
func (t *Telemetry) Accepted(cached bool) {
	if cached {
		t.VaultauthServerRequests.Add(context.Background(), 1, t.acceptedCached...)
		return
	}
	t.VaultauthServerRequests.Add(context.Background(), 1, t.acceptedVerified...)
}
