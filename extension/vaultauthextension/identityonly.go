package vaultauthextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
)

// identityOnly is an instance with neither client nor server: it logs in
// and offers this collector's own identity to the vaultidentity processor.
type identityOnly struct {
	*vaultLink
}

func (i *identityOnly) Start(ctx context.Context, host component.Host) error {
	return i.start(ctx, host, nil)
}
