package vaultclient

import (
	"context"
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
	tls := cfg.TLS.ClientConfig
	if cfg.TLS.ServerName != "" {
		tls.ServerName = cfg.TLS.ServerName
	}
	tlsCfg, err := tls.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault.tls: %w", err)
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
