package vaultclient

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
)

// Each block has its own Validate, so the Collector's config walk
// (confmap.Validate) prefixes every error with the key path, e.g.
// "vault::retry::max_interval: ...".

// VaultConfig says where Vault is and how to talk to it (the `vault:` block).
type VaultConfig struct {
	// Address of the Vault server. Default: $VAULT_ADDR.
	Address string `mapstructure:"address"`
	// Namespace sent as X-Vault-Namespace (Enterprise). Default: $VAULT_NAMESPACE.
	Namespace string `mapstructure:"namespace"`
	// TLS settings for the connection to Vault; fields left unset come from
	// VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,
	// VAULT_SKIP_VERIFY and VAULT_TLS_SERVER_NAME, as with Vault's CLI.
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
	// MethodAgent sends no token: a Vault Agent or Vault Proxy at
	// vault.address, with use_auto_auth_token, adds its own.
	MethodAgent = "agent"
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
	// SecretIDWrapped says secret_id (or secret_id_file) holds a
	// response-wrapping token of the secret id, unwrapped at login.
	SecretIDWrapped bool `mapstructure:"secret_id_wrapped"`

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

// Validate checks the `vault:` block (its tls and retry blocks validate themselves).
func (c *VaultConfig) Validate() error {
	var errs []error
	if c.ResolvedAddress() == "" {
		errs = append(errs, errors.New("address: required (or set VAULT_ADDR)"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// Validate checks the `retry:` block.
func (c *RetryConfig) Validate() error {
	var errs []error
	if c.InitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("initial_interval: must be positive, got %s", c.InitialInterval))
	}
	if c.MaxInterval < c.InitialInterval {
		errs = append(errs, fmt.Errorf("max_interval: must be at least initial_interval, got %s", c.MaxInterval))
	}
	return errors.Join(errs...)
}

// Validate checks the `auth:` block.
func (c *AuthConfig) Validate() error {
	var errs []error
	switch c.Method {
	case MethodToken:
		switch {
		case c.Token == "" && c.TokenFile == "":
			errs = append(errs, errors.New("token: one of token or token_file is required with method token "+
				"(behind a Vault Agent or Proxy with use_auto_auth_token, use method agent)"))
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
	case MethodAgent:
		if c.Token != "" || c.TokenFile != "" {
			errs = append(errs, errors.New("token: not used with method agent (the agent adds its own token)"))
		}
	default:
		errs = append(errs, fmt.Errorf("method: unknown %q (want token, approle, kubernetes, jwt or agent)", c.Method))
	}
	if c.SecretIDWrapped && c.Method != MethodAppRole {
		errs = append(errs, errors.New("secret_id_wrapped: only used with method approle"))
	}
	return errors.Join(errs...)
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
