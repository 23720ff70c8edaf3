package vaultauthextension

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Debug logs through a login, a rotation, an outage, a revocation and a new
// login never contain the secret values, the Vault tokens or the AppRole
// credentials; nor do the errors exporters get.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	roleID, secretID := v.AppRole(t, "otel-collector", map[string]any{"token_policies": readPolicy})
	proxy := vaulttest.NewCountingProxy(t, v)
	proxy.SetDown(true)
	h := startExtension(t, withAppRole(clientConfig(proxy.Addr), roleID, secretID))
	_, exps := exporters(t, h)
	secrets := []string{"ls-token-v1", "ls-token-v2", roleID, secretID, v.RootToken}

	var exportErrs []string
	for from, exp := range exps { // no credential yet
		if err := exp.ConsumeTraces(context.Background(), traces(from)); err != nil {
			exportErrs = append(exportErrs, err.Error())
		}
	}
	require.NotEmpty(t, exportErrs)
	proxy.SetDown(false)
	h.waitSent(t, "ls-token-v1")

	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2"})
	h.waitSent(t, "ls-token-v2")
	proxy.SetDown(true)
	h.waitStatus(t, componentstatus.StatusRecoverableError)
	proxy.SetDown(false)
	v.Write(t, "sys/leases/revoke-prefix/auth/approle/login", nil)
	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v1"})
	h.waitSent(t, "ls-token-v1")
	// Every Vault token the extension used, as seen on the wire: two logins.
	tokens := proxy.Tokens()
	require.GreaterOrEqual(t, len(tokens), 2, "the extension's Vault tokens")
	secrets = append(secrets, tokens...)
	for _, err := range h.host.Errors() {
		exportErrs = append(exportErrs, err.Error())
	}

	logged := renderLogs(h.logs)
	require.NotEmpty(t, logged)
	for i, s := range secrets {
		require.NotContains(t, logged, s, "secret #%d appears in the logs", i)
		for _, e := range exportErrs {
			require.NotContains(t, e, s, "secret #%d appears in an export or status error", i)
		}
	}
}

// renderLogs encodes every entry with its fields, as a JSON log sink would.
func renderLogs(logs *observer.ObservedLogs) string {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"})
	var b strings.Builder
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err == nil {
			b.Write(buf.Bytes())
		}
	}
	return b.String()
}
