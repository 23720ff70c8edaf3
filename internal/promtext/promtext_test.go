package promtext

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const page = `# HELP otelcol_vaultauth_secret_version KV v2 version of the secret in use.
# TYPE otelcol_vaultauth_secret_version gauge
otelcol_vaultauth_secret_version{extension="vaultauth/lightstep",tenant="team-a"} 7
otelcol_vaultauth_secret_version{extension="vaultauth/lightstep",tenant="team-a2"} 9
otelcol_vaultauth_secret_version{extension="vaultauth/lightstep",tenant="with \"quote\""} 3
# TYPE otelcol_vaultauth_secret_version_age_seconds gauge
otelcol_vaultauth_secret_version_age_seconds{extension="vaultauth/lightstep",tenant="team-a"} 12.5
# TYPE otelcol_exporter_sent_spans counter
otelcol_exporter_sent_spans{exporter="otlp_grpc"} 1234
`

// One metric's samples, exactly: not another metric whose name it starts,
// and labels matched whole, not as substrings.
func TestSamples(t *testing.T) {
	got, err := Samples(strings.NewReader(page), "otelcol_vaultauth_secret_version")
	require.NoError(t, err)
	require.Len(t, got, 3)
	var matched []float64
	for _, s := range got {
		if s.Matches(map[string]string{"tenant": "team-a"}) {
			matched = append(matched, s.Value)
		}
	}
	assert.Equal(t, []float64{7}, matched, "team-a only, not team-a2")
	assert.Equal(t, `with "quote"`, got[2].Labels["tenant"])

	counter, err := Samples(strings.NewReader(page), "otelcol_exporter_sent_spans")
	require.NoError(t, err)
	assert.Equal(t, 1234.0, counter[0].Value)

	none, err := Samples(strings.NewReader(page), "otelcol_absent")
	require.NoError(t, err)
	assert.Empty(t, none)

	_, err = Samples(strings.NewReader("otelcol_x{a=\"b\" 1\n"), "otelcol_x")
	assert.Error(t, err, "a malformed page")
}
