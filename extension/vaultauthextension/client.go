package vaultauthextension

import (
	"context"
	"net/http"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/source"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// clientAuth is an exporter authenticator: it reads a credential from Vault
// (a secret, one per tenant, or this collector's identity token), keeps it
// fresh, and sends it with every export. Until the first value arrives,
// exports fail with a retryable error. The work is the source's
// (internal/source); this type wires it to the Collector.
type clientAuth struct {
	*vaultLink
	cfg      *ClientConfig
	settings source.Settings
	source   source.Source
}

var (
	_ extensionauth.HTTPClient       = (*clientAuth)(nil)
	_ extensionauth.GRPCClient       = (*clientAuth)(nil)
	_ extensionmiddleware.GRPCClient = (*clientAuth)(nil)
	_ identity.CredentialGate        = (*clientAuth)(nil)
)

func newClientAuth(link *vaultLink, cfg *ClientConfig) *clientAuth {
	s := cfg.settings()
	return &clientAuth{vaultLink: link, cfg: cfg, settings: s, source: source.New(link.id, s)}
}

func (c *clientAuth) Start(ctx context.Context, host component.Host) error {
	return c.start(ctx, host, func(runCtx context.Context) error {
		if err := c.source.Start(ctx, runCtx, host, c.env()); err != nil {
			return err
		}
		return source.RegisterGauges(c.telemetry, c.source)
	})
}

// Shutdown stops the watching and replays, then closes the park.
func (c *clientAuth) Shutdown(ctx context.Context) error {
	err := c.vaultLink.Shutdown(ctx)
	c.source.Close(ctx)
	return err
}

// CredentialReady says whether a request of ctx's sender may enter now
// (vaultidentity's tenant_credentials): nil, or the error that holds it.
func (c *clientAuth) CredentialReady(ctx context.Context) error { return c.source.Admit(ctx) }

// Dependencies makes the Collector start the park's storage extension
// first (extensioncapabilities.Dependent).
func (c *clientAuth) Dependencies() []component.ID {
	if t := c.settings.Tenants; t != nil && t.Park.Storage != nil {
		return []component.ID{*t.Park.Storage}
	}
	return nil
}

func (c *clientAuth) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	return source.NewRoundTripper(base, c.source, c.id, c.settings), nil
}

func (c *clientAuth) PerRPCCredentials() (credentials.PerRPCCredentials, error) {
	return source.NewPerRPCCredentials(c.source, c.id, c.settings), nil
}

// GetGRPCClientOptions makes a tenants client the gRPC exporter's park
// (extensionmiddleware.GRPCClient); other clients add nothing.
func (c *clientAuth) GetGRPCClientOptions(context.Context) ([]grpc.DialOption, error) {
	return source.GRPCClientOptions(c.source), nil
}
