package vaultauthextension

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

const (
	lightstepPath = "lightstep/prod"               // under the KV v2 mount "secret"
	lightstepAPI  = "secret/data/" + lightstepPath // the raw API path users configure
	readPolicy    = "lightstep-read"               // read on data and metadata
	eventually    = 20 * time.Second               // bound for awaited conditions
	poll          = 10 * time.Millisecond          // how often they are checked
	readPolicyHCL = `
path "secret/data/lightstep/*"     { capabilities = ["read"] }
path "secret/metadata/lightstep/*" { capabilities = ["read"] }
`
)

var extID = component.MustNewIDWithName(metadata.Type.String(), "lightstep")

// harness is a running extension against a real Vault, with its logs at
// debug level and the status it reported.
type harness struct {
	ext  *vaultAuth
	tel  *componenttest.Telemetry
	host *pipelinetest.Host
	logs *observer.ObservedLogs
}

// newConfig returns a config for vaultAddr that reads the Lightstep token,
// with a short refresh interval and retry so tests are quick.
func newConfig(vaultAddr string) *Config {
	cfg := createDefaultConfig()
	cfg.Vault.Address = vaultAddr
	cfg.Vault.Timeout = 2 * time.Second
	cfg.Vault.Retry.InitialInterval = 20 * time.Millisecond
	cfg.Vault.Retry.MaxInterval = 200 * time.Millisecond
	c := cfg.Client.GetOrInsertDefault()
	c.Secret.Path, c.Secret.Key = lightstepAPI, "access_token"
	c.RefreshInterval = 50 * time.Millisecond
	return cfg
}

func start(t *testing.T, cfg *Config) *harness {
	t.Helper()
	return startLogging(t, cfg, zapcore.DebugLevel)
}

// startLogging is start with the logs captured from level up.
func startLogging(t *testing.T, cfg *Config, level zapcore.Level) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	core, logs := observer.New(level)
	set := extensiontest.NewNopSettings(metadata.Type)
	set.ID = extID
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	e, err := NewFactory().Create(context.Background(), set, cfg)
	require.NoError(t, err)
	h := &harness{ext: e.(*vaultAuth), tel: tel, logs: logs}
	h.host = pipelinetest.NewHost(map[component.ID]component.Component{extID: e})
	require.NoError(t, e.Start(context.Background(), h.host))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return h
}

// value is the header value the extension sends now ("" when none).
func (h *harness) value() string {
	if c := h.ext.current.Load(); c != nil {
		return c.values[0]
	}
	return ""
}

func (h *harness) waitValue(t *testing.T, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return h.value() == want }, eventually, poll,
		"the extension never sent the expected value (sending %q)", redact(h.value(), want))
}

// redact keeps secrets out of failure messages: it says only whether got is want.
func redact(got, want string) string {
	switch got {
	case "":
		return "nothing"
	case want:
		return "the expected value"
	}
	return "another value"
}

// startReading is the common start: the Lightstep token's first version
// ("ls-token-v1") is written to Vault v, and the extension, reaching Vault at
// addr (v itself or a proxy in front of it) with a token of the read policy,
// has read it. adjust, if any, changes the config before the start.
func startReading(t *testing.T, v *vaulttest.Server, addr string, adjust ...func(*Config)) *harness {
	t.Helper()
	seedLightstep(t, v, "ls-token-v1")
	cfg := newConfig(addr)
	cfg.Auth.Token = configToken(t, v)
	for _, f := range adjust {
		f(cfg)
	}
	h := start(t, cfg)
	h.waitValue(t, "ls-token-v1")
	return h
}

// waitStatus waits until the last status the extension reported is want.
func (h *harness) waitStatus(t *testing.T, want componentstatus.Status) {
	t.Helper()
	require.Eventually(t, func() bool { return h.host.LastStatus() == want }, eventually, poll,
		"status never became %s (last: %s)", want, h.host.LastStatus())
}

// seedLightstep writes the token's first version and the read policy.
func seedLightstep(t *testing.T, v *vaulttest.Server, token string) {
	t.Helper()
	v.PutPolicy(t, readPolicy, readPolicyHCL)
	v.PutKV2(t, lightstepPath, map[string]any{"access_token": token})
}

// childToken creates a renewable token with the read policy.
func childToken(t *testing.T, v *vaulttest.Server, ttl string) string {
	t.Helper()
	sec := v.Write(t, "auth/token/create", map[string]any{
		"policies": []string{readPolicy}, "ttl": ttl, "renewable": true, "no_parent": true,
	})
	return sec.Auth.ClientToken
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// configToken creates a token with the read policy, for the token method.
func configToken(t *testing.T, v *vaulttest.Server) configopaque.String {
	return configopaque.String(childToken(t, v, "1h"))
}

func configopaqueString(s string) configopaque.String { return configopaque.String(s) }

func clientInfo(ctx context.Context) client.Info { return client.FromContext(ctx) }
