package vaultauthextension

import (
	"errors"
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

// Config is the vaultauth extension's configuration. An instance does one
// job, chosen by its blocks: client (an exporter authenticator), server (a
// receiver authenticator), or neither (this collector's own identity, for
// the vaultidentity processor). Every instance with an auth block also
// offers this collector's own identity.
type Config struct {
	// Vault says where Vault is and how to reach it.
	Vault vaultclient.VaultConfig `mapstructure:"vault"`
	// Auth says how this collector logs in to Vault. Not needed by a server
	// in identity_token mode (the JWKS is public).
	Auth configoptional.Optional[vaultclient.AuthConfig] `mapstructure:"auth"`
	// Client makes the extension an exporter authenticator.
	Client configoptional.Optional[ClientConfig] `mapstructure:"client"`
	// Server makes the extension a receiver authenticator.
	Server configoptional.Optional[ServerConfig] `mapstructure:"server"`
	// Guard bounds what receivers that list this instance in their
	// middlewares decode at once, before they decode it.
	Guard GuardConfig `mapstructure:"guard"`
	// Audit hashes this collector's own Vault token with a Vault audit
	// device, for vault.credential.hmac on self-stamped telemetry.
	Audit configoptional.Optional[OwnAuditConfig] `mapstructure:"audit"`

	_ struct{}
}

func createDefaultConfig() *Config {
	return &Config{
		Vault:  vaultclient.DefaultVaultConfig(),
		Auth:   configoptional.Default(vaultclient.DefaultAuthConfig()),
		Client: configoptional.Default(defaultClientConfig()),
		Server: configoptional.Default(defaultServerConfig()),
		Guard:  defaultGuardConfig(),
		Audit:  configoptional.Default(OwnAuditConfig{Device: "file"}),
	}
}

// Validate checks what no single block can: which blocks go together. Each
// block validates itself, and the Collector's config walk names its keys.
func (c *Config) Validate() error {
	var errs []error
	if c.Client.HasValue() && c.Server.HasValue() {
		errs = append(errs, errors.New("server: set client or server, not both: one vaultauth instance per job "+
			"(e.g. vaultauth/agents with server, vaultauth/lightstep with client)"))
	}
	if c.needsLogin() && !c.Auth.HasValue() {
		errs = append(errs, errors.New("auth: required: how this collector logs in to Vault "+
			"(only a server in identity_token mode works without)"))
	}
	return errors.Join(errs...)
}

// needsLogin says whether the extension talks to Vault with a token of its
// own: everything but a server verifying identity JWTs (public JWKS) alone.
func (c *Config) needsLogin() bool {
	if !c.Server.HasValue() {
		return true
	}
	// Hashing credentials for the audit join needs a token too, as does
	// looking up pods' entities.
	s := c.Server.Get()
	return s.TokenLookup.HasValue() || s.KubernetesPods.HasValue() || s.Audit.HasValue()
}

// hasLogin says whether the instance logs in (and so knows this collector's
// own identity): an auth block is set, or needed.
func (c *Config) hasLogin() bool { return c.Auth.HasValue() || c.needsLogin() }

// Defaults shared by the blocks.
const (
	defaultRefreshInterval     = time.Minute
	defaultCacheTTL            = 5 * time.Minute
	defaultCacheSize           = 10000
	defaultNegativeCacheTTL    = 10 * time.Second
	defaultMaxCredentialSize   = 16 << 10
	defaultLeeway              = 10 * time.Second
	defaultJWKSRefetchInterval = 10 * time.Second
	defaultJWKSRefreshInterval = time.Hour
)
