package vaultauthextension

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/source"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// ClientConfig is the exporter side: which credential to send and how.
type ClientConfig struct {
	// Secret is the secret field sent to the backend.
	Secret configoptional.Optional[vaultclient.SecretConfig] `mapstructure:"secret"`
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
	// Tenants gives each tenant its own secret: secret.path with {tenant}
	// replaced (or a path of its own in tenants.paths), chosen by the tenant
	// the server side verified for the request that carried the data.
	Tenants configoptional.Optional[TenantsConfig] `mapstructure:"tenants"`
	// RequireTransportSecurity refuses to send the credential over a
	// connection without TLS, except to a loopback address. On by default:
	// turn it off only where something else encrypts the hop (a service mesh).
	RequireTransportSecurity bool `mapstructure:"require_transport_security"`

	_ struct{}
}

// TenantsConfig is the `client.tenants` block.
type TenantsConfig struct {
	// Paths gives tenants a secret path of their own; the others use
	// secret.path with {tenant} replaced.
	Paths map[string]string `mapstructure:"paths"`
	// MaxTenants bounds the tenants whose secrets are watched at once.
	MaxTenants int `mapstructure:"max_tenants"`
	// IdleTimeout stops watching a tenant that sent nothing for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// Default is the tenant whose credential a tenant without a secret of
	// its own uses. Empty (the default): that tenant's data waits, with a
	// retryable error, until its secret is written.
	Default string `mapstructure:"default"`
	// Park is where a tenant's exports wait while they cannot be sent (no
	// usable credential, refused by the backend, the backend throttling
	// or down), so they never hold the exporter's consumers, which every
	// tenant shares.
	Park ParkConfig `mapstructure:"park"`

	_ struct{}
}

// ParkConfig is the `client.tenants.park` block.
type ParkConfig struct {
	// Storage is the storage extension (e.g. file_storage/queue) parked
	// exports are kept in, across restarts. Default: memory. An exporter
	// with a persistent sending queue requires one: its queued data would
	// otherwise move from disk to memory, and be lost with the process.
	Storage *component.ID `mapstructure:"storage"`
	// MaxSizeMiB is how much one tenant may have parked before its new
	// requests are held at its senders (retryable refusals at the door).
	// What its backlog in the exporter's queue holds is still parked: no
	// export is lost.
	MaxSizeMiB int64 `mapstructure:"max_size_mib"`
	// InitialInterval and MaxInterval pace the retries of a tenant whose
	// backend refuses or throttles (exponential, with jitter). A tenant
	// waiting for a credential is retried when one is read.
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	MaxInterval     time.Duration `mapstructure:"max_interval"`

	_ struct{}
}

// Validate checks the `park:` block.
func (c *ParkConfig) Validate() error {
	var errs []error
	if c.MaxSizeMiB <= 0 {
		errs = append(errs, fmt.Errorf("max_size_mib: must be positive, got %d", c.MaxSizeMiB))
	}
	if c.InitialInterval <= 0 {
		errs = append(errs, errors.New("initial_interval: must be positive"))
	}
	if c.MaxInterval < c.InitialInterval {
		errs = append(errs, fmt.Errorf("max_interval: must be at least initial_interval, got %s", c.MaxInterval))
	}
	return errors.Join(errs...)
}

func defaultParkConfig() ParkConfig {
	return ParkConfig{MaxSizeMiB: 256, InitialInterval: time.Second, MaxInterval: 30 * time.Second}
}

// tenantPlaceholder is replaced by the tenant's name in secret.path.
const tenantPlaceholder = source.TenantPlaceholder

// Validate checks the `tenants:` block.
func (c *TenantsConfig) Validate() error {
	var errs []error
	if c.MaxTenants <= 0 {
		errs = append(errs, fmt.Errorf("max_tenants: must be positive, got %d", c.MaxTenants))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("idle_timeout: must be positive, got %s", c.IdleTimeout))
	}
	if c.Default != "" {
		if err := identity.ValidTenant(c.Default); err != nil {
			errs = append(errs, fmt.Errorf("default: %w", err))
		}
	}
	for name, path := range c.Paths {
		if err := identity.ValidTenant(name); err != nil {
			errs = append(errs, fmt.Errorf("paths::%s: %w", name, err))
		}
		if strings.Trim(path, "/") == "" {
			errs = append(errs, fmt.Errorf("paths::%s: empty path", name))
		}
	}
	return errors.Join(errs...)
}

// IdentityTokenClientConfig names the Vault OIDC role whose token is sent.
type IdentityTokenClientConfig struct {
	// Role is the identity/oidc/role whose token is requested.
	Role string `mapstructure:"role"`

	_ struct{}
}

func defaultClientConfig() ClientConfig {
	return ClientConfig{
		RefreshInterval: defaultRefreshInterval, RequireTransportSecurity: true,
		Tenants: configoptional.Default(TenantsConfig{MaxTenants: 100, IdleTimeout: time.Hour, Park: defaultParkConfig()}),
	}
}

// Validate checks the `client:` block.
func (c *ClientConfig) Validate() error {
	var errs []error
	switch {
	case c.IdentityToken.HasValue() && c.Secret.HasValue():
		errs = append(errs, errors.New("identity_token: set secret or identity_token, not both"))
	case !c.IdentityToken.HasValue() && !c.Secret.HasValue():
		errs = append(errs, errors.New("secret: required: the secret to send (or identity_token, to send this collector's identity)"))
	}
	templated := c.Secret.HasValue() && strings.Contains(c.Secret.Get().Path, tenantPlaceholder)
	switch {
	case c.Tenants.HasValue() && c.IdentityToken.HasValue():
		errs = append(errs, errors.New("tenants: not used with identity_token (tenants choose among secrets)"))
	case c.Tenants.HasValue() && !templated && len(c.Tenants.Get().Paths) == 0:
		errs = append(errs, errors.New("tenants: put {tenant} in secret.path (e.g. secret/data/lightstep/{tenant}), or list tenants.paths"))
	case !c.Tenants.HasValue() && templated:
		errs = append(errs, errors.New("secret: path has {tenant}: add a tenants block to route by tenant"))
	}
	if h := c.header(); strings.TrimSpace(h) == "" || strings.ContainsAny(h, " :\r\n") {
		errs = append(errs, fmt.Errorf("header: must be a header name, got %q", c.Header))
	}
	if strings.ContainsAny(c.Scheme, "\r\n") {
		errs = append(errs, errors.New("scheme: must be one line"))
	}
	if c.RefreshInterval <= 0 {
		errs = append(errs, fmt.Errorf("refresh_interval: must be positive, got %s", c.RefreshInterval))
	}
	return errors.Join(errs...)
}

// Validate checks the `identity_token:` block.
func (c *IdentityTokenClientConfig) Validate() error {
	if c.Role == "" {
		return errors.New("role: required")
	}
	return nil
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

// secret is what the client side reads: the configured secret, or this
// collector's identity token.
func (c *ClientConfig) secret() vaultclient.SecretConfig {
	if c.IdentityToken.HasValue() {
		return vaultclient.SecretConfig{
			Path: "identity/oidc/token/" + c.IdentityToken.Get().Role, Key: "token", TTLField: "ttl",
		}
	}
	return *c.Secret.Get()
}

// settings are the client side's settings, defaults applied.
func (c *ClientConfig) settings() source.Settings {
	s := source.Settings{
		Header: c.header(), Scheme: c.scheme(), Secret: c.secret(),
		RefreshInterval: c.RefreshInterval, RequireTransportSecurity: c.RequireTransportSecurity,
	}
	if c.Tenants.HasValue() {
		t := c.Tenants.Get()
		s.Tenants = &source.TenantsSettings{
			Paths: t.Paths, MaxTenants: t.MaxTenants, IdleTimeout: t.IdleTimeout, Default: t.Default,
			Park: source.ParkSettings{
				Storage: t.Park.Storage, MaxBytes: t.Park.MaxSizeMiB << 20,
				InitialInterval: t.Park.InitialInterval, MaxInterval: t.Park.MaxInterval,
			},
		}
	}
	return s
}
