package vaultauthextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.MustNewIDWithName(metadata.Type.String(), name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestLoadConfig(t *testing.T) {
	t.Setenv("VAULT_ADDR", "")

	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "token", cfg.Auth.Method)
	assert.Equal(t, 10*time.Second, cfg.Vault.Timeout)
	client := cfg.Client.Get()
	assert.Equal(t, "lightstep-access-token", client.header())
	assert.Equal(t, "", client.Scheme)
	assert.Equal(t, time.Minute, client.RefreshInterval)
	assert.Equal(t, "secret/data/lightstep/prod", client.Secret.Path)
	assert.Equal(t, "access_token", client.Secret.Key)

	cfg = loadConfig(t, "approle")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "approle", cfg.Auth.Method)
	assert.Equal(t, "team-a", cfg.Vault.Namespace)
	assert.Equal(t, 5*time.Second, cfg.Vault.Timeout)
	assert.Equal(t, "/etc/vault/ca.pem", cfg.Vault.TLS.CAFile)
	assert.Equal(t, "vault.internal", cfg.Vault.TLS.ServerName)
	assert.Equal(t, "/secrets/secret-id", cfg.Auth.SecretIDFile)
	assert.Equal(t, 30*time.Second, cfg.Client.Get().RefreshInterval)

	cfg = loadConfig(t, "bearer")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "authorization", cfg.Client.Get().header())
	assert.Equal(t, "Bearer", cfg.Client.Get().Scheme)
}

func TestValidateNamesTheKey(t *testing.T) {
	t.Setenv("VAULT_ADDR", "")
	valid := func() *Config {
		cfg := createDefaultConfig()
		cfg.Vault.Address = "http://127.0.0.1:8200"
		cfg.Auth.Token = "t"
		c := cfg.Client.GetOrInsertDefault()
		c.Secret.Path, c.Secret.Key = "secret/data/x", "k"
		return cfg
	}
	require.NoError(t, valid().Validate())

	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{"no address", func(c *Config) { c.Vault.Address = "" }, "vault.address"},
		{"zero timeout", func(c *Config) { c.Vault.Timeout = 0 }, "vault.timeout"},
		{"unknown method", func(c *Config) { c.Auth.Method = "ldap" }, "auth.method"},
		{"token method without token", func(c *Config) { c.Auth.Token = "" }, "auth.token"},
		{"token and token_file", func(c *Config) { c.Auth.TokenFile = "/t" }, "auth.token_file"},
		{"approle without role_id", func(c *Config) { c.Auth.Method = "approle"; c.Auth.SecretID = "s" }, "auth.role_id"},
		{"approle without secret_id", func(c *Config) { c.Auth.Method = "approle"; c.Auth.RoleID = "r" }, "auth.secret_id"},
		{"kubernetes without role", func(c *Config) { c.Auth.Method = "kubernetes" }, "auth.role"},
		{"jwt without jwt_file", func(c *Config) { c.Auth.Method = "jwt"; c.Auth.Role = "r" }, "auth.jwt_file"},
		{"empty path", func(c *Config) { c.Client.Get().Secret.Path = "" }, "client.secret.path"},
		{"empty key", func(c *Config) { c.Client.Get().Secret.Key = "" }, "client.secret.key"},
		{"bad header", func(c *Config) { c.Client.Get().Header = "two words" }, "client.header"},
		{"zero refresh_interval", func(c *Config) { c.Client.Get().RefreshInterval = 0 }, "client.refresh_interval"},
		{"bad retry", func(c *Config) { c.Vault.Retry.MaxInterval = time.Millisecond }, "vault.retry.max_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.mutate(cfg)
			err := confmap.Validate(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantKey+":")
		})
	}
}

func TestAddressFromEnvironment(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:8200")
	cfg := createDefaultConfig()
	cfg.Auth.Token = "t"
	c := cfg.Client.GetOrInsertDefault()
	c.Secret.Path, c.Secret.Key = "secret/data/x", "k"
	assert.NoError(t, cfg.Validate())
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Auth.Token = "hvs.super-secret-token"
	cfg.Auth.SecretID = "secret-id-value"
	assert.NotContains(t, string(mustMarshalText(t, cfg.Auth.Token)), "super-secret")
	assert.NotContains(t, string(mustMarshalText(t, cfg.Auth.SecretID)), "secret-id-value")
}

func mustMarshalText(t *testing.T, v interface{ MarshalText() ([]byte, error) }) []byte {
	t.Helper()
	b, err := v.MarshalText()
	require.NoError(t, err)
	return b
}
