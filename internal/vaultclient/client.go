package vaultclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/api"
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
	if tlsCfg != nil {
		c.HttpClient.Transport.(*http.Transport).TLSClientConfig = tlsCfg
	}
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

func (c VaultConfig) loadTLS(ctx context.Context) (*tls.Config, error) {
	t := c.TLS.ClientConfig
	if c.TLS.ServerName != "" {
		t.ServerName = c.TLS.ServerName
	}
	tlsCfg, err := t.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault.tls: %w", err)
	}
	return tlsCfg, nil
}
