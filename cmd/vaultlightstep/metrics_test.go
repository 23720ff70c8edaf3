package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What a gateway's Prometheus endpoint serves (the Collector adds the
// otel_scope_* labels), with a multi-tenant extension beside it.
const gatewayMetrics = `# HELP otelcol_vaultauth_secret_version KV v2 version of the secret in use.
# TYPE otelcol_vaultauth_secret_version gauge
otelcol_vaultauth_secret_version{extension="vaultauth/lightstep",otel_scope_name="github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension",otel_scope_schema_url="",otel_scope_version="",tenant=""} 7
otelcol_vaultauth_secret_version{extension="vaultauth/teams",otel_scope_name="x",tenant="team-a"} 3
otelcol_vaultauth_secret_version{extension="vaultauth/teams",otel_scope_name="x",tenant="team-b"} 12 1700000000000
# HELP otelcol_vaultauth_secret_version_age_seconds Age of the version in use.
# TYPE otelcol_vaultauth_secret_version_age_seconds gauge
otelcol_vaultauth_secret_version_age_seconds{extension="vaultauth/lightstep",otel_scope_name="x",tenant=""} 12.3
otelcol_exporter_sent_spans_total{exporter="otlp_grpc/lightstep"} 100
`

func TestSecretVersion(t *testing.T) {
	for _, tc := range []struct {
		name, text, extension, tenant string
		want                          int
		wantErr                       string
	}{
		{name: "single secret", text: gatewayMetrics, extension: "vaultauth/lightstep", want: 7},
		{name: "tenant", text: gatewayMetrics, extension: "vaultauth/teams", tenant: "team-a", want: 3},
		{name: "tenant with a timestamp", text: gatewayMetrics, extension: "vaultauth/teams", tenant: "team-b", want: 12},
		{name: "no tenant label is the single secret", extension: "vaultauth/lightstep", want: 4,
			text: "otelcol_vaultauth_secret_version{extension=\"vaultauth/lightstep\"} 4\n"},
		{name: "the lowest of duplicate series", extension: "vaultauth/lightstep", want: 4,
			text: "otelcol_vaultauth_secret_version{extension=\"vaultauth/lightstep\",tenant=\"\"} 5\n" +
				"otelcol_vaultauth_secret_version{tenant=\"\",extension=\"vaultauth/lightstep\"} 4\n"},
		{name: "escaped label values", extension: `odd "x" \ y`, want: 2,
			text: `otelcol_vaultauth_secret_version{extension="odd \"x\" \\ y",tenant=""} 2` + "\n"},
		{name: "a trailing comma", extension: "vaultauth/lightstep", want: 9,
			text: `otelcol_vaultauth_secret_version{extension="vaultauth/lightstep",} 9` + "\n"},
		{name: "another extension only", text: gatewayMetrics, extension: "vaultauth/other",
			wantErr: `no otelcol_vaultauth_secret_version series for extension "vaultauth/other", tenant ""`},
		{name: "unknown tenant", text: gatewayMetrics, extension: "vaultauth/teams", tenant: "team-z",
			wantErr: `tenant "team-z"`},
		{name: "a tenant's series is not the single secret", text: gatewayMetrics, extension: "vaultauth/teams",
			wantErr: `no otelcol_vaultauth_secret_version series`},
		{name: "the age gauge is another metric", extension: "vaultauth/lightstep",
			text:    "otelcol_vaultauth_secret_version_age_seconds{extension=\"vaultauth/lightstep\",tenant=\"\"} 3\n",
			wantErr: "no otelcol_vaultauth_secret_version series"},
		{name: "empty", text: "", extension: "vaultauth/lightstep", wantErr: "no otelcol_vaultauth_secret_version series"},
		{name: "malformed value", extension: "vaultauth/lightstep",
			text: "otelcol_vaultauth_secret_version{extension=\"vaultauth/lightstep\"} seven\n", wantErr: `metrics: text format parsing error in line 1`},
		{name: "unterminated labels", extension: "vaultauth/lightstep",
			text: "otelcol_vaultauth_secret_version{extension=\"vaultauth/lightstep\n", wantErr: "metrics: text format parsing error"},
		{name: "NaN", extension: "vaultauth/lightstep",
			text: "otelcol_vaultauth_secret_version{extension=\"vaultauth/lightstep\"} NaN\n", wantErr: "not a version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := secretVersion(strings.NewReader(tc.text), tc.extension, tc.tenant)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestProgressLine(t *testing.T) {
	lagging := []status{{url: "http://gw3:8888/metrics", version: 6}}
	assert.Equal(t, "2/3 collectors send version 7: http://gw3:8888/metrics still on 6", progressLine(2, 3, 7, lagging))
	for i := range 6 {
		lagging = append(lagging, status{url: "http://gw" + string(rune('4'+i)) + ":8888/metrics", version: 6})
	}
	assert.Contains(t, progressLine(0, 7, 7, lagging), ", and 2 more")
}

func FuzzParseSamples(f *testing.F) {
	f.Add(gatewayMetrics)
	f.Add(`otelcol_vaultauth_secret_version{extension="a\"b",tenant=""} 1`)
	f.Fuzz(func(t *testing.T, text string) {
		_, _ = secretVersion(strings.NewReader(text), "vaultauth/lightstep", "")
	})
}
