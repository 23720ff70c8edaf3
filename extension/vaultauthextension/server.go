package vaultauthextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/server"
)

// serverAuth is a receiver authenticator: it verifies the Vault identity of
// each sender and puts it in client.Info.Auth. The work is the
// authenticator's (internal/server); this type wires it to the Collector.
type serverAuth struct {
	*vaultLink
	auth *server.Authenticator
}

var _ extensionauth.Server = (*serverAuth)(nil)

func newServerAuth(link *vaultLink, cfg *ServerConfig) (*serverAuth, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err // Validate has said so already
	}
	return &serverAuth{vaultLink: link, auth: server.New(s, link.telemetry, link.logger, &link.events, link.id.String())}, nil
}

func (s *serverAuth) Start(ctx context.Context, host component.Host) error {
	return s.start(ctx, host, func(runCtx context.Context) error {
		return s.auth.Start(ctx, runCtx, s.vault, s.conf.Vault, s.run)
	})
}

func (s *serverAuth) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	return s.auth.Authenticate(ctx, sources)
}
