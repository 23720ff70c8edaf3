package vaultauthextension

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// Header defaults.
const (
	// DefaultHeader is the header Lightstep reads its access token from.
	DefaultHeader = "lightstep-access-token"
	// DefaultIdentityHeader carries identity tokens, client and server side.
	DefaultIdentityHeader = "authorization"
)

// Config is the vaultauth extension's configuration. Either block, client or
// server, may be left out; an extension with neither still logs in and
// offers this collector's own identity to the vaultidentity processor.
type Config struct {
	// Vault says where Vault is and how to reach it.
	Vault vaultclient.VaultConfig `mapstructure:"vault"`
	// Auth says how this collector logs in to Vault. Not needed by a server
	// in identity_token mode alone.
	Auth vaultclient.AuthConfig `mapstructure:"auth"`
	// Client makes the extension an exporter authenticator.
	Client configoptional.Optional[ClientConfig] `mapstructure:"client"`
	// Server makes the extension a receiver authenticator.
	Server configoptional.Optional[ServerConfig] `mapstructure:"server"`

	_ struct{}
}

// ClientConfig is the exporter side: which credential to send and how.
type ClientConfig struct {
	// Secret is the secret field sent to the backend.
	Secret vaultclient.SecretConfig `mapstructure:"secret"`
	// IdentityToken sends this collector's own Vault identity token instead
	// of a secret: how an agent proves its identity to a gateway.
	IdentityToken configoptional.Optional[IdentityTokenClientConfig] `mapstructure:"identity_token"`
	// Header carries the credential. Default: lightstep-access-token for a
	// secret, authorization for an identity token.
	Header string `mapstructure:"header"`
	// Scheme is put before the value with a space. Default: none for a
	// secret, Bearer for an identity token.
	Scheme string `mapstructure:"scheme"`
	// RefreshInterval is how often a secret without a lease is checked for a
	// new version (KV v2 metadata) or re-read (other engines).
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
	// RequireTransportSecurity makes gRPC refuse to send the credential over
	// a connection without TLS. Off by default: the exporter's own tls
	// setting decides the transport, so a plaintext loopback setup works.
	RequireTransportSecurity bool `mapstructure:"require_transport_security"`

	_ struct{}
}

// IdentityTokenClientConfig names the Vault OIDC role whose token is sent.
type IdentityTokenClientConfig struct {
	// Role is the identity/oidc/role whose token is requested.
	Role string `mapstructure:"role"`

	_ struct{}
}

// ServerConfig is the receiver side: how senders' Vault identities are verified.
type ServerConfig struct {
	// Header carries the sender's credential; a "Bearer " prefix is stripped.
	Header string `mapstructure:"header"`
	// IdentityToken verifies Vault identity JWTs locally against the JWKS.
	IdentityToken configoptional.Optional[IdentityTokenServerConfig] `mapstructure:"identity_token"`
	// TokenLookup checks Vault tokens with auth/token/lookup.
	TokenLookup configoptional.Optional[TokenLookupConfig] `mapstructure:"token_lookup"`
	// CacheTTL bounds how long a verified credential is trusted without a
	// new check; never beyond the credential's own expiry.
	CacheTTL time.Duration `mapstructure:"cache_ttl"`
	// CacheSize bounds the number of verified credentials remembered.
	CacheSize int `mapstructure:"cache_size"`
	// NegativeCacheTTL is how long a rejected credential is rejected without
	// a new check, so repeated garbage cannot load Vault. 0 turns it off.
	NegativeCacheTTL time.Duration `mapstructure:"negative_cache_ttl"`
	// MaxCredentialSize rejects larger credentials before any parsing.
	MaxCredentialSize int `mapstructure:"max_credential_size"`

	_ struct{}
}

// IdentityTokenServerConfig is the identity JWT mode.
type IdentityTokenServerConfig struct {
	// Issuers accepted in `iss`, one per Vault namespace. Default:
	// <vault.address>/v1/identity/oidc (the root namespace).
	Issuers []string `mapstructure:"issuers"`
	// Audience required in `aud`: the Vault OIDC role's client_id.
	Audience string `mapstructure:"audience"`
	// EntityNameClaim is the claim holding the entity name, put there by the
	// role's template: {"entity_name": {{identity.entity.name}}}.
	EntityNameClaim string `mapstructure:"entity_name_claim"`
	// Leeway allowed on exp, nbf and iat for clock skew.
	Leeway time.Duration `mapstructure:"leeway"`
	// JWKSRefetchInterval is the least time between two JWKS fetches caused
	// by an unknown key id (after a key rotation).
	JWKSRefetchInterval time.Duration `mapstructure:"jwks_refetch_interval"`

	_ struct{}
}

// TokenLookupConfig is the Vault token mode.
type TokenLookupConfig struct {
	// MaxConcurrentLookups bounds Vault lookups in flight for credentials
	// not in the cache; requests beyond it are refused as unavailable.
	MaxConcurrentLookups int `mapstructure:"max_concurrent_lookups"`
	// MaxLookupsPerSecond bounds the rate of Vault lookups (with a burst of
	// MaxConcurrentLookups), so a flood of distinct credentials cannot turn
	// into a flood of Vault calls; requests beyond it are refused as unavailable.
	MaxLookupsPerSecond float64 `mapstructure:"max_lookups_per_second"`

	_ struct{}
}

func createDefaultConfig() *Config {
	return &Config{
		Vault: vaultclient.DefaultVaultConfig(),
		Auth:  vaultclient.DefaultAuthConfig(),
		Client: configoptional.Default(ClientConfig{
			RefreshInterval: time.Minute,
		}),
		Server: configoptional.Default(ServerConfig{
			Header: DefaultIdentityHeader,
			IdentityToken: configoptional.Default(IdentityTokenServerConfig{
				EntityNameClaim:     "entity_name",
				Leeway:              10 * time.Second,
				JWKSRefetchInterval: 10 * time.Second,
			}),
			TokenLookup:       configoptional.Default(TokenLookupConfig{MaxConcurrentLookups: 32, MaxLookupsPerSecond: 100}),
			CacheTTL:          5 * time.Minute,
			CacheSize:         10000,
			NegativeCacheTTL:  10 * time.Second,
			MaxCredentialSize: 16 << 10,
		}),
	}
}

// Validate checks the whole configuration; every error names its key.
func (c *Config) Validate() error {
	errs := []error{c.Vault.Check("vault.")}
	if c.needsLogin() {
		errs = append(errs, c.Auth.Check("auth."))
	}
	if c.Client.HasValue() {
		errs = append(errs, c.Client.Get().check("client."))
	}
	if c.Server.HasValue() {
		errs = append(errs, c.Server.Get().check("server."))
	}
	return errors.Join(errs...)
}

// needsLogin says whether the extension talks to Vault with a token of its
// own: everything but a server verifying identity JWTs (public JWKS) alone.
func (c *Config) needsLogin() bool {
	if c.Client.HasValue() || !c.Server.HasValue() {
		return true
	}
	return c.Server.Get().TokenLookup.HasValue()
}

func (c *ClientConfig) check(prefix string) error {
	var errs []error
	secretSet := c.Secret.Path != "" || c.Secret.Key != ""
	switch {
	case c.IdentityToken.HasValue() && secretSet:
		errs = append(errs, fmt.Errorf("%sidentity_token: set secret or identity_token, not both", prefix))
	case c.IdentityToken.HasValue():
		if c.IdentityToken.Get().Role == "" {
			errs = append(errs, fmt.Errorf("%sidentity_token.role: required", prefix))
		}
	default:
		errs = append(errs, c.Secret.Check(prefix+"secret."))
	}
	if h := c.header(); strings.TrimSpace(h) == "" || strings.ContainsAny(h, " :\r\n") {
		errs = append(errs, fmt.Errorf("%sheader: must be a header name, got %q", prefix, c.Header))
	}
	if strings.ContainsAny(c.Scheme, "\r\n") {
		errs = append(errs, fmt.Errorf("%sscheme: must be one line", prefix))
	}
	if c.RefreshInterval <= 0 {
		errs = append(errs, fmt.Errorf("%srefresh_interval: must be positive, got %s", prefix, c.RefreshInterval))
	}
	return errors.Join(errs...)
}

// header is the configured header, or the default for what is sent.
func (c *ClientConfig) header() string {
	switch {
	case c.Header != "":
		return c.Header
	case c.IdentityToken.HasValue():
		return DefaultIdentityHeader
	}
	return DefaultHeader
}

// scheme is the configured scheme, or Bearer for identity tokens.
func (c *ClientConfig) scheme() string {
	if c.Scheme == "" && c.IdentityToken.HasValue() {
		return "Bearer"
	}
	return c.Scheme
}

func (c *ServerConfig) check(prefix string) error {
	var errs []error
	switch {
	case c.IdentityToken.HasValue() == c.TokenLookup.HasValue():
		errs = append(errs, fmt.Errorf("%sidentity_token: set exactly one of identity_token or token_lookup", prefix))
	case c.IdentityToken.HasValue():
		it := c.IdentityToken.Get()
		if it.Audience == "" {
			errs = append(errs, fmt.Errorf("%sidentity_token.audience: required (the Vault OIDC role's client_id)", prefix))
		}
		for i, iss := range it.Issuers {
			if u, err := url.Parse(iss); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				errs = append(errs, fmt.Errorf("%sidentity_token.issuers[%d]: not an http(s) URL: %q", prefix, i, iss))
			}
		}
		if it.Leeway < 0 {
			errs = append(errs, fmt.Errorf("%sidentity_token.leeway: must not be negative", prefix))
		}
		if it.JWKSRefetchInterval <= 0 {
			errs = append(errs, fmt.Errorf("%sidentity_token.jwks_refetch_interval: must be positive", prefix))
		}
	case c.TokenLookup.HasValue():
		if c.TokenLookup.Get().MaxConcurrentLookups <= 0 {
			errs = append(errs, fmt.Errorf("%stoken_lookup.max_concurrent_lookups: must be positive", prefix))
		}
		if c.TokenLookup.Get().MaxLookupsPerSecond <= 0 {
			errs = append(errs, fmt.Errorf("%stoken_lookup.max_lookups_per_second: must be positive", prefix))
		}
	}
	if strings.TrimSpace(c.Header) == "" {
		errs = append(errs, fmt.Errorf("%sheader: required", prefix))
	}
	if c.CacheTTL <= 0 {
		errs = append(errs, fmt.Errorf("%scache_ttl: must be positive, got %s", prefix, c.CacheTTL))
	}
	if c.CacheSize <= 0 {
		errs = append(errs, fmt.Errorf("%scache_size: must be positive, got %d", prefix, c.CacheSize))
	}
	if c.NegativeCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("%snegative_cache_ttl: must not be negative", prefix))
	}
	if c.MaxCredentialSize <= 0 {
		errs = append(errs, fmt.Errorf("%smax_credential_size: must be positive", prefix))
	}
	return errors.Join(errs...)
}
