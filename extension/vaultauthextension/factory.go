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

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newVaultAuth(cfg.(*Config), set)
}
