package vaultauthextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
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
	require.NoError(t, validate(cfg))
	assert.Equal(t, "token", cfg.Auth.Get().Method)
	assert.Equal(t, 10*time.Second, cfg.Vault.Timeout)
	client := cfg.Client.Get()
	assert.Equal(t, "lightstep-access-token", client.header())
	assert.Equal(t, "", client.Scheme)
	assert.Equal(t, time.Minute, client.RefreshInterval)
	assert.True(t, client.RequireTransportSecurity, "secure by default")
	assert.Equal(t, "secret/data/lightstep/prod", client.Secret.Get().Path)
	assert.Equal(t, "access_token", client.Secret.Get().Key)
	assert.False(t, cfg.Server.HasValue())

	cfg = loadConfig(t, "approle")
	require.NoError(t, validate(cfg))
	assert.Equal(t, "approle", cfg.Auth.Get().Method)
	assert.Equal(t, "team-a", cfg.Vault.Namespace)
	assert.Equal(t, 5*time.Second, cfg.Vault.Timeout)
	assert.Equal(t, "/etc/vault/ca.pem", cfg.Vault.TLS.CAFile)
	assert.Equal(t, "vault.internal", cfg.Vault.TLS.ServerName)
	assert.Equal(t, "/secrets/secret-id", cfg.Auth.Get().SecretIDFile)
	assert.Equal(t, 30*time.Second, cfg.Client.Get().RefreshInterval)

	cfg = loadConfig(t, "pods")
	require.NoError(t, validate(cfg))
	pods := cfg.Server.Get().KubernetesPods.Get()
	assert.Equal(t, "node-a", pods.NodeName)
	assert.Equal(t, "serviceAccount", pods.AuthType, "default: the pod's own service account")
	assert.Equal(t, "kubernetes", pods.MountPath)
	assert.Equal(t, AliasServiceAccountName, pods.AliasNameSource)
	assert.Equal(t, UnidentifiedReject, pods.Unidentified, "default: fail closed")
	assert.False(t, cfg.Server.Get().IdentityToken.HasValue())

	cfg = loadConfig(t, "bearer")
	require.NoError(t, validate(cfg))
	assert.Equal(t, "authorization", cfg.Client.Get().header())
	assert.Equal(t, "Bearer", cfg.Client.Get().Scheme)
}

// validate is the Collector's config walk: each block's Validate, with the
// block's key path (a::b) in front of its errors, which name the key.
func validate(cfg *Config) error { return confmap.Validate(cfg) }

func TestValidateNamesTheKey(t *testing.T) {
	t.Setenv("VAULT_ADDR", "")
	valid := func() *Config { return withToken(clientConfig("http://127.0.0.1:8200"), "t") }
	require.NoError(t, validate(valid()))
	server := func() *Config {
		cfg := serverConfig("http://127.0.0.1:8200", "aud")
		return cfg
	}
	require.NoError(t, validate(server()))
	pods := func() *Config {
		cfg := withToken(createDefaultConfig(), "t")
		cfg.Vault.Address = "http://127.0.0.1:8200"
		cfg.Server.GetOrInsertDefault().KubernetesPods.GetOrInsertDefault().NodeName = "node-a"
		return cfg
	}
	require.NoError(t, validate(pods()))

	tests := []struct {
		name    string
		cfg     func() *Config
		mutate  func(*Config)
		wantKey string
	}{
		{"no address", valid, func(c *Config) { c.Vault.Address = "" }, "vault: address:"},
		{"zero timeout", valid, func(c *Config) { c.Vault.Timeout = 0 }, "vault: timeout:"},
		{"bad retry", valid, func(c *Config) { c.Vault.Retry.MaxInterval = time.Millisecond }, "vault::retry: max_interval:"},
		{"no auth", valid, func(c *Config) { c.Auth = configoptional.None[vaultclient.AuthConfig]() }, "auth: required"},
		{"unknown method", valid, func(c *Config) { auth(c).Method = "ldap" }, "auth: method:"},
		{"token method without token", valid, func(c *Config) { auth(c).Token = "" }, "auth: token:"},
		{"token and token_file", valid, func(c *Config) { auth(c).TokenFile = "/t" }, "auth: token_file:"},
		{"approle without role_id", valid, func(c *Config) { auth(c).Method = "approle"; auth(c).SecretID = "s" }, "auth: role_id:"},
		{"approle without secret_id", valid, func(c *Config) { auth(c).Method = "approle"; auth(c).RoleID = "r" }, "auth: secret_id:"},
		{"kubernetes without role", valid, func(c *Config) { auth(c).Method = "kubernetes" }, "auth: role:"},
		{"jwt without jwt_file", valid, func(c *Config) { auth(c).Method = "jwt"; auth(c).Role = "r" }, "auth: jwt_file:"},
		{"agent with a token", valid, func(c *Config) { auth(c).Method = "agent" }, "auth: token:"},
		{"wrapped without approle", valid, func(c *Config) { auth(c).SecretIDWrapped = true }, "auth: secret_id_wrapped:"},
		{"empty path", valid, func(c *Config) { c.Client.Get().Secret.Get().Path = "" }, "client: secret: path:"},
		{"empty key", valid, func(c *Config) { c.Client.Get().Secret.Get().Key = "" }, "client: secret: key:"},
		{"no secret", valid, func(c *Config) { c.Client.Get().Secret = configoptional.None[vaultclient.SecretConfig]() }, "client: secret: required"},
		{"secret and identity token", valid, func(c *Config) { c.Client.Get().IdentityToken.GetOrInsertDefault().Role = "r" }, "client: identity_token:"},
		{"identity token without role", valid, func(c *Config) {
			c.Client.Get().Secret = configoptional.None[vaultclient.SecretConfig]()
			c.Client.Get().IdentityToken.GetOrInsertDefault()
		}, "client: identity_token: role:"},
		{"bad header", valid, func(c *Config) { c.Client.Get().Header = "two words" }, "client: header:"},
		{"zero refresh_interval", valid, func(c *Config) { c.Client.Get().RefreshInterval = 0 }, "client: refresh_interval:"},
		{"client and server", valid, func(c *Config) { c.Server.GetOrInsertDefault().TokenLookup.GetOrInsertDefault() }, "server: set client or server"},
		{"no audience", server, func(c *Config) { c.Server.Get().IdentityToken.Get().Audience = "" }, "server: identity_token: audience:"},
		{"bad issuer", server, func(c *Config) { c.Server.Get().IdentityToken.Get().Issuers = []string{":"} }, "server: identity_token: issuers::0:"},
		{"two modes", server, func(c *Config) { c.Server.Get().TokenLookup.GetOrInsertDefault() }, "server: identity_token: set exactly one"},
		{"zero cache_ttl", server, func(c *Config) { c.Server.Get().CacheTTL = 0 }, "server: cache_ttl:"},
		{"attribute outside vault.", server, func(c *Config) { c.Server.Get().Attributes = map[string]string{"team": "claim:team"} }, "server: attributes:"},
		{"reserved attribute", server, func(c *Config) { c.Server.Get().Attributes = map[string]string{"vault.entity.id": "claim:x"} }, "server: attributes:"},
		{"unknown source", server, func(c *Config) { c.Server.Get().Attributes = map[string]string{"vault.x": "header:x"} }, "server: attributes:"},
		{"lookup source in jwt mode", server, func(c *Config) { c.Server.Get().Attributes = map[string]string{"vault.x": "entity:name"} }, "server: attributes:"},
		{"refresh below refetch", server, func(c *Config) { c.Server.Get().IdentityToken.Get().JWKSRefreshInterval = time.Second }, "server: identity_token: jwks_refresh_interval:"},
		{"pods without node", pods, func(c *Config) { c.Server.Get().KubernetesPods.Get().NodeName = "" }, "server: kubernetes_pods: node_name:"},
		{"pods with unknown auth_type", pods, func(c *Config) { c.Server.Get().KubernetesPods.Get().AuthType = "x" }, "server: kubernetes_pods: auth_type:"},
		{"pods with unknown unidentified", pods, func(c *Config) { c.Server.Get().KubernetesPods.Get().Unidentified = "stamp" }, "server: kubernetes_pods: unidentified:"},
		{"pods with unknown alias source", pods, func(c *Config) { c.Server.Get().KubernetesPods.Get().AliasNameSource = "uid" }, "server: kubernetes_pods: alias_name_source:"},
		{"pods and lookup", pods, func(c *Config) { c.Server.Get().TokenLookup.GetOrInsertDefault() }, "server: identity_token: set exactly one"},
		{"pods with a token source", pods, func(c *Config) { c.Server.Get().Attributes = map[string]string{"vault.x": "token:policies"} }, "server: attributes:"},
		{"pods with audit", pods, func(c *Config) { c.Server.Get().Audit.GetOrInsertDefault() }, "server: audit:"},
		{"pods without auth", pods, func(c *Config) { c.Auth = configoptional.None[vaultclient.AuthConfig]() }, "auth: required"},
		{"shallow max_json_depth", server, func(c *Config) { c.Guard.MaxJSONDepth = 10 }, "max_json_depth: at least 32"},
		{"unbounded max_json_depth", server, func(c *Config) { c.Guard.MaxJSONDepth = 1 << 30 }, "max_json_depth: at most 10000"},
		{"per-client above global", server, func(c *Config) {
			c.Server.Get().IdentityToken = configoptional.None[IdentityTokenServerConfig]()
			c.Server.Get().TokenLookup.GetOrInsertDefault().MaxLookupsPerSecondPerClient = 1000
			withToken(c, "t")
		}, "server: token_lookup: max_lookups_per_second_per_client:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg()
			tt.mutate(cfg)
			err := validate(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantKey)
		})
	}
}

func TestAddressFromEnvironment(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:8200")
	cfg := withToken(clientConfig(""), "t")
	assert.NoError(t, validate(cfg))
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	cfg := createDefaultConfig()
	auth(cfg).Token = "hvs.super-secret-token"
	auth(cfg).SecretID = "secret-id-value"
	assert.NotContains(t, string(mustMarshalText(t, cfg.Auth.Get().Token)), "super-secret")
	assert.NotContains(t, string(mustMarshalText(t, cfg.Auth.Get().SecretID)), "secret-id-value")
}

func mustMarshalText(t *testing.T, v interface{ MarshalText() ([]byte, error) }) []byte {
	t.Helper()
	b, err := v.MarshalText()
	require.NoError(t, err)
	return b
}
