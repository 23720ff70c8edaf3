package vaultauthextension

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Small helpers, each named for the one thing it sets up. Tests observe the
// extension only as the Collector does: through the authenticator
// interfaces, its status, its telemetry and its logs.

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

// harness is a running extension, with its logs at the chosen level, its
// telemetry and the status it reported.
type harness struct {
	ext  extension.Extension
	tel  *componenttest.Telemetry
	host *pipelinetest.Host
	logs *observer.ObservedLogs
}

// clientConfig reads the Lightstep token from Vault at vaultAddr, with a
// short refresh interval and retry so tests are quick. It has no auth yet.
func clientConfig(vaultAddr string) *Config {
	cfg := createDefaultConfig()
	cfg.Vault.Address = vaultAddr
	cfg.Vault.Timeout = 2 * time.Second
	cfg.Vault.Retry.InitialInterval = 20 * time.Millisecond
	cfg.Vault.Retry.MaxInterval = 200 * time.Millisecond
	c := cfg.Client.GetOrInsertDefault()
	*c.Secret.GetOrInsertDefault() = vaultclient.SecretConfig{Path: lightstepAPI, Key: "access_token"}
	c.RefreshInterval = 50 * time.Millisecond
	return cfg
}

// auth returns the config's auth block, inserting the default.
func auth(cfg *Config) *vaultclient.AuthConfig { return cfg.Auth.GetOrInsertDefault() }

// withToken logs in with a Vault token.
func withToken(cfg *Config, token string) *Config {
	auth(cfg).Token = configopaque.String(token)
	return cfg
}

// withAppRole logs in with an AppRole role id and secret id.
func withAppRole(cfg *Config, roleID, secretID string) *Config {
	a := auth(cfg)
	a.Method, a.RoleID, a.SecretID = vaultclient.MethodAppRole, configopaque.String(roleID), configopaque.String(secretID)
	return cfg
}

func startExtension(t *testing.T, cfg *Config) *harness {
	t.Helper()
	return startExtensionLogging(t, cfg, zapcore.DebugLevel)
}

// startExtensionLogging starts it with its logs captured from level up.
func startExtensionLogging(t *testing.T, cfg *Config, level zapcore.Level) *harness {
	t.Helper()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	require.NoError(t, validate(cfg))
	core, logs := observer.New(level)
	set := extensiontest.NewNopSettings(metadata.Type)
	set.ID = extID
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	e, err := NewFactory().Create(context.Background(), set, cfg)
	require.NoError(t, err)
	h := &harness{ext: e, tel: tel, logs: logs}
	h.host = pipelinetest.NewHost(map[component.ID]component.Component{extID: e})
	require.NoError(t, e.Start(context.Background(), h.host))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return h
}

// sent is the value the extension sends on a gRPC export now ("" when none).
func (h *harness) sent(t *testing.T) string {
	t.Helper()
	creds, err := h.ext.(extensionauth.GRPCClient).PerRPCCredentials()
	require.NoError(t, err)
	md, err := creds.GetRequestMetadata(context.Background())
	if err != nil {
		return ""
	}
	return md["Lightstep-Access-Token"]
}

func (h *harness) waitSent(t *testing.T, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return h.sent(t) == want }, eventually, poll,
		"the extension never sent the expected value (sending %s)", redact(h.sent(t), want))
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

// readerToken creates a renewable token with the read policy.
func readerToken(t *testing.T, v *vaulttest.Server, ttl string) string {
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
