package vaultauthextension

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// DefaultHeader is the header Lightstep reads its access token from.
const DefaultHeader = "lightstep-access-token"

// Config is the vaultauth extension's configuration.
type Config struct {
	// Vault says where Vault is and how to reach it.
	Vault vaultclient.VaultConfig `mapstructure:"vault"`
	// Auth says how this collector logs in to Vault.
	Auth vaultclient.AuthConfig `mapstructure:"auth"`
	// Client makes the extension an exporter authenticator.
	Client configoptional.Optional[ClientConfig] `mapstructure:"client"`

	_ struct{}
}

// ClientConfig is the exporter side: which credential to send and how.
type ClientConfig struct {
	// Secret is the secret field sent to the backend.
	Secret vaultclient.SecretConfig `mapstructure:"secret"`
	// Header carries the credential. Default: lightstep-access-token.
	Header string `mapstructure:"header"`
	// Scheme is put before the value with a space, e.g. "Bearer".
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

func createDefaultConfig() *Config {
	return &Config{
		Vault: vaultclient.DefaultVaultConfig(),
		Auth:  vaultclient.DefaultAuthConfig(),
		Client: configoptional.Default(ClientConfig{
			Header:          DefaultHeader,
			RefreshInterval: time.Minute,
		}),
	}
}

// Validate checks the whole configuration; every error names its key.
func (c *Config) Validate() error {
	errs := []error{c.Vault.Check("vault."), c.Auth.Check("auth.")}
	if !c.Client.HasValue() {
		errs = append(errs, errors.New("client: required (the extension has nothing to do without it)"))
	} else {
		errs = append(errs, c.Client.Get().check("client."))
	}
	return errors.Join(errs...)
}

func (c *ClientConfig) check(prefix string) error {
	errs := []error{c.Secret.Check(prefix + "secret.")}
	if strings.TrimSpace(c.Header) == "" || strings.ContainsAny(c.Header, " :\r\n") {
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
