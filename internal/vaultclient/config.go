package vaultclient

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
)

// VaultConfig says where Vault is and how to talk to it (the `vault:` block).
type VaultConfig struct {
	// Address of the Vault server. Default: $VAULT_ADDR.
	Address string `mapstructure:"address"`
	// Namespace sent as X-Vault-Namespace (Enterprise). Default: $VAULT_NAMESPACE.
	Namespace string `mapstructure:"namespace"`
	// TLS settings for the connection to Vault.
	TLS TLSConfig `mapstructure:"tls"`
	// Timeout of one Vault request.
	Timeout time.Duration `mapstructure:"timeout"`
	// Retry bounds the backoff between failed Vault calls.
	Retry RetryConfig `mapstructure:"retry"`

	_ struct{}
}

// TLSConfig is configtls.ClientConfig plus server_name, the name Vault's own
// clients use for it (VAULT_TLS_SERVER_NAME), as an alias of
// server_name_override.
type TLSConfig struct {
	configtls.ClientConfig `mapstructure:",squash"`
	ServerName             string `mapstructure:"server_name"`
}

// RetryConfig is a capped exponential backoff with jitter.
type RetryConfig struct {
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	MaxInterval     time.Duration `mapstructure:"max_interval"`

	_ struct{}
}

// Auth method names accepted in `auth.method`.
const (
	MethodToken      = "token"
	MethodAppRole    = "approle"
	MethodKubernetes = "kubernetes"
	MethodJWT        = "jwt"
)

// DefaultKubernetesJWTFile is where Kubernetes mounts the service account token.
const DefaultKubernetesJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// AuthConfig says how to log in to Vault (the `auth:` block).
type AuthConfig struct {
	Method string `mapstructure:"method"`
	// MountPath of the auth method. Default: the method's name.
	MountPath string `mapstructure:"mount_path"`

	Token     configopaque.String `mapstructure:"token"`
	TokenFile string              `mapstructure:"token_file"`
	// TokenFilePollInterval is how often token_file is checked for new content.
	TokenFilePollInterval time.Duration `mapstructure:"token_file_poll_interval"`

	RoleID       configopaque.String `mapstructure:"role_id"`
	RoleIDFile   string              `mapstructure:"role_id_file"`
	SecretID     configopaque.String `mapstructure:"secret_id"`
	SecretIDFile string              `mapstructure:"secret_id_file"`

	Role    string `mapstructure:"role"`
	JWTFile string `mapstructure:"jwt_file"`

	_ struct{}
}

// DefaultVaultConfig returns the defaults of the `vault:` block.
func DefaultVaultConfig() VaultConfig {
	return VaultConfig{
		Timeout: 10 * time.Second,
		// Capped at 10s so a collector is back within seconds of Vault:
		// a thousand collectors retrying every 10s is 100 requests/s.
		Retry: RetryConfig{InitialInterval: time.Second, MaxInterval: 10 * time.Second},
	}
}

// DefaultAuthConfig returns the defaults of the `auth:` block.
func DefaultAuthConfig() AuthConfig {
	return AuthConfig{Method: MethodToken, TokenFilePollInterval: time.Second}
}

// ResolvedAddress is Address, or $VAULT_ADDR when Address is empty.
func (c VaultConfig) ResolvedAddress() string {
	if c.Address != "" {
		return c.Address
	}
	return os.Getenv("VAULT_ADDR")
}

// ResolvedNamespace is Namespace, or $VAULT_NAMESPACE when Namespace is empty.
func (c VaultConfig) ResolvedNamespace() string {
	if c.Namespace != "" {
		return c.Namespace
	}
	return os.Getenv("VAULT_NAMESPACE")
}

// Check checks the `vault:` block; errors name the key, prefixed with prefix
// (e.g. "vault."). It is not named Validate so the collector's config walk
// does not report each problem twice: the component's Validate calls it.
func (c VaultConfig) Check(prefix string) error {
	var errs []error
	if c.ResolvedAddress() == "" {
		errs = append(errs, errors.New("address: required (or set VAULT_ADDR)"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", c.Timeout))
	}
	if c.Retry.InitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("retry.initial_interval: must be positive, got %s", c.Retry.InitialInterval))
	}
	if c.Retry.MaxInterval < c.Retry.InitialInterval {
		errs = append(errs, fmt.Errorf("retry.max_interval: must be at least retry.initial_interval, got %s", c.Retry.MaxInterval))
	}
	return prefixed(prefix, errs)
}

// Check checks the `auth:` block like VaultConfig.Check.
func (c AuthConfig) Check(prefix string) error {
	var errs []error
	switch c.Method {
	case MethodToken:
		switch {
		case c.Token == "" && c.TokenFile == "":
			errs = append(errs, errors.New("token: one of token or token_file is required with method token"))
		case c.Token != "" && c.TokenFile != "":
			errs = append(errs, errors.New("token_file: set token or token_file, not both"))
		}
		if c.TokenFile != "" && c.TokenFilePollInterval <= 0 {
			errs = append(errs, fmt.Errorf("token_file_poll_interval: must be positive, got %s", c.TokenFilePollInterval))
		}
	case MethodAppRole:
		errs = append(errs, exactlyOne("role_id", c.RoleID != "", "role_id_file", c.RoleIDFile != ""))
		errs = append(errs, exactlyOne("secret_id", c.SecretID != "", "secret_id_file", c.SecretIDFile != ""))
	case MethodKubernetes:
		if c.Role == "" {
			errs = append(errs, errors.New("role: required with method kubernetes"))
		}
	case MethodJWT:
		if c.Role == "" {
			errs = append(errs, errors.New("role: required with method jwt"))
		}
		if c.JWTFile == "" {
			errs = append(errs, errors.New("jwt_file: required with method jwt"))
		}
	default:
		errs = append(errs, fmt.Errorf("method: unknown %q (want token, approle, kubernetes or jwt)", c.Method))
	}
	return prefixed(prefix, errs)
}

// ResolvedMountPath is MountPath, or the method's name.
func (c AuthConfig) ResolvedMountPath() string {
	if c.MountPath != "" {
		return c.MountPath
	}
	return c.Method
}

func exactlyOne(a string, hasA bool, b string, hasB bool) error {
	switch {
	case hasA && hasB:
		return fmt.Errorf("%s: set %s or %s, not both", b, a, b)
	case !hasA && !hasB:
		return fmt.Errorf("%s: one of %s or %s is required", a, a, b)
	}
	return nil
}

// prefixed joins errs, each prefixed with the key path of its block.
func prefixed(prefix string, errs []error) error {
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, fmt.Errorf("%s%w", prefix, err))
		}
	}
	return errors.Join(out...)
}
