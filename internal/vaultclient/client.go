package vaultclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/collector/config/configopaque"
)

// NewClient builds a Vault API client from the `vault:` block. It holds no
// token yet: a Session logs in and keeps one on it.
func NewClient(ctx context.Context, cfg VaultConfig) (*api.Client, error) {
	c := api.DefaultConfig()
	if c.Error != nil {
		return nil, fmt.Errorf("vault client defaults: %w", c.Error)
	}
	c.Address = cfg.ResolvedAddress()
	c.Timeout = cfg.Timeout
	// The components retry with their own backoff; api's retries would
	// multiply the load on a Vault that is already struggling.
	c.MaxRetries = 0
	tlsCfg, err := cfg.loadTLS(ctx)
	if err != nil {
		return nil, err
	}
	// Always ours: api.DefaultConfig has read the VAULT_* TLS variables too,
	// and loadTLS applied them under the same precedence.
	c.HttpClient.Transport.(*http.Transport).TLSClientConfig = tlsCfg
	client, err := api.NewClient(c)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	// api.NewClient reads VAULT_TOKEN from the environment; the token comes
	// from the auth block only, so nothing is used that was not configured.
	client.ClearToken()
	if ns := cfg.ResolvedNamespace(); ns != "" {
		client.SetNamespace(ns)
	}
	return client, nil
}

// NewHTTPClient is a plain HTTP client with the `vault:` block's TLS and
// timeout, for Vault's unauthenticated endpoints (the identity JWKS).
func NewHTTPClient(ctx context.Context, cfg VaultConfig) (*http.Client, error) {
	tlsCfg, err := cfg.loadTLS(ctx)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsCfg
	return &http.Client{Transport: t, Timeout: cfg.Timeout}, nil
}

// loadTLS builds the TLS settings: vault.tls first, then, for each setting
// it leaves unset, the environment variable Vault's CLI reads.
func (c VaultConfig) loadTLS(ctx context.Context) (*tls.Config, error) {
	t := c.TLS.ClientConfig
	if c.TLS.ServerName != "" {
		t.ServerName = c.TLS.ServerName
	}
	env := os.Getenv
	if t.CAFile == "" && t.CAPem == "" {
		switch {
		case env(api.EnvVaultCACert) != "":
			t.CAFile = env(api.EnvVaultCACert)
		case env(api.EnvVaultCACertBytes) != "":
			t.CAPem = configopaque.String(env(api.EnvVaultCACertBytes))
		}
	}
	if t.CertFile == "" && t.KeyFile == "" && t.CertPem == "" && t.KeyPem == "" {
		t.CertFile, t.KeyFile = env(api.EnvVaultClientCert), env(api.EnvVaultClientKey)
	}
	if t.ServerName == "" {
		t.ServerName = env(api.EnvVaultTLSServerName)
	}
	if skip, err := strconv.ParseBool(env(api.EnvVaultSkipVerify)); err == nil && skip {
		t.InsecureSkipVerify = true
	}
	tlsCfg, err := t.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault.tls: %w", err)
	}
	if capath := env(api.EnvVaultCAPath); capath != "" && t.CAFile == "" && t.CAPem == "" {
		pool, err := loadCAPath(capath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", api.EnvVaultCAPath, err)
		}
		if tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tlsCfg.RootCAs = pool
	}
	return tlsCfg, nil
}

// loadCAPath reads every PEM certificate in a directory, as VAULT_CAPATH is
// read by Vault's CLI.
func loadCAPath(dir string) (*x509.CertPool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		pem, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		pool.AppendCertsFromPEM(pem)
	}
	return pool, nil
}
