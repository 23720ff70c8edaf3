package vaultauthextension

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// sum returns the total of an int64 sum or gauge metric, and the rendering
// of its attributes (to check no secret is in them).
func (h *harness) sum(t *testing.T, name string) (int64, string) {
	t.Helper()
	return h.sumWhere(t, name)
}

// sumWhere is sum over the data points whose attributes include each of
// want ("key=value").
func (h *harness) sumWhere(t *testing.T, name string, want ...string) (int64, string) {
	t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0, ""
	}
	var total int64
	var attrs string
	add := func(v int64, set attribute.Set) {
		enc := set.Encoded(attribute.DefaultEncoder())
		for _, w := range want {
			if !strings.Contains(","+enc+",", ","+w+",") {
				return
			}
		}
		total += v
		attrs += enc + ";"
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			add(p.Value, p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			add(p.Value, p.Attributes)
		}
	default:
		t.Fatalf("%s: unexpected data %T", name, m.Data)
	}
	return total, attrs
}

// gauge returns the value of a float64 gauge (its first data point).
func (h *harness) gauge(t *testing.T, name string) (float64, bool) {
	t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0, false
	}
	g, ok := m.Data.(metricdata.Gauge[float64])
	if !ok || len(g.DataPoints) == 0 {
		return 0, false
	}
	return g.DataPoints[0].Value, true
}

func TestInternalTelemetry(t *testing.T) {
	v := vaulttest.Start(t)
	proxy := vaulttest.NewProxy(t, v.HostPort())
	seedLightstep(t, v, "ls-token-v1")
	h := startExtension(t, withToken(clientConfig(proxy.Addr), readerToken(t, v, "1h")))
	h.waitSent(t, "ls-token-v1")

	version, _ := h.sum(t, "otelcol_vaultauth_secret_version")
	assert.EqualValues(t, 1, version)
	rotations, _ := h.sum(t, "otelcol_vaultauth_rotations")
	assert.Zero(t, rotations, "the first value is not a rotation")
	available, _ := h.sum(t, "otelcol_vaultauth_credential_available")
	assert.EqualValues(t, 1, available)
	ttl, ok := h.gauge(t, "otelcol_vaultauth_token_ttl_seconds")
	assert.True(t, ok && ttl > 3500 && ttl <= 3600, "this collector's own token TTL: %v", ttl)
	age, ok := h.gauge(t, "otelcol_vaultauth_secret_version_age_seconds")
	assert.True(t, ok && age >= 0 && age < 60, "age of the version in use: %v", age)

	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2"})
	h.waitSent(t, "ls-token-v2")
	require.Eventually(t, func() bool { n, _ := h.sum(t, "otelcol_vaultauth_rotations"); return n == 1 }, eventually, poll)
	version, _ = h.sum(t, "otelcol_vaultauth_secret_version")
	assert.EqualValues(t, 2, version)

	proxy.SetDown(true)
	require.Eventually(t, func() bool { n, _ := h.sum(t, "otelcol_vaultauth_vault_request_failures"); return n > 0 }, eventually, poll)
	_, attrs := h.sum(t, "otelcol_vaultauth_vault_request_failures")
	assert.Contains(t, attrs, "activity=secret read")
	assert.Contains(t, attrs, "extension=vaultauth/lightstep", "instances are told apart, as the Collector's exporter= and processor=")
	assert.NotContains(t, attrs, "ls-token")
}
