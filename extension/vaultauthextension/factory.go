package vaultauthextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
)

// NewFactory returns the factory of the vaultauth extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		createExtension,
		metadata.ExtensionStability,
	)
}

// createExtension returns the type the config asks for: an exporter
// authenticator (client), a receiver authenticator (server), or this
// collector's own identity alone. Each implements only what it serves.
func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	c := cfg.(*Config)
	j := identityJob
	switch {
	case c.Server.HasValue():
		j = serverJob
	case c.Client.HasValue():
		j = clientJob
	}
	link, err := newVaultLink(c, set, j)
	if err != nil {
		return nil, err
	}
	switch j {
	case serverJob:
		return newServerAuth(link, c.Server.Get())
	case clientJob:
		return newClientAuth(link, c.Client.Get()), nil
	}
	return &identityOnly{link}, nil
}
