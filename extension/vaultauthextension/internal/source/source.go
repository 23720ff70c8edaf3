// Package source is the vaultauth client side: where each export's
// credential comes from (one secret, or one per tenant), how it is put on
// the export (gRPC per-RPC credentials, an HTTP RoundTripper), and the park
// that keeps a tenant's exports while its backend cannot take them.
package source // import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/source"

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/status"
	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// Settings is what the client side is configured with (the `client` block,
// its defaults applied).
type Settings struct {
	Header, Scheme string
	// Secret is what is read: a secret's field, or this collector's
	// identity token; with tenants, its path holds {tenant}.
	Secret                   vaultclient.SecretConfig
	RefreshInterval          time.Duration
	RequireTransportSecurity bool
	Tenants                  *TenantsSettings // nil: one secret
}

// TenantsSettings is the `client.tenants` block.
type TenantsSettings struct {
	Paths       map[string]string
	MaxTenants  int
	IdleTimeout time.Duration
	Default     string
	Park        ParkSettings
}

// ParkSettings is the `client.tenants.park` block.
type ParkSettings struct {
	Storage         *component.ID // nil: memory
	MaxBytes        int64
	InitialInterval time.Duration
	MaxInterval     time.Duration
}

// refusalLogEvery is the least time between two warnings of one kind.
const refusalLogEvery = 10 * time.Second

// TenantPlaceholder is replaced by the tenant's name in the secret path.
const TenantPlaceholder = "{tenant}"

// tenantSecret is the secret a tenant's credential is read from, and
// whether the tenant has one at all.
func (s *Settings) tenantSecret(tenant string) (vaultclient.SecretConfig, bool) {
	sc := s.Secret
	if p, ok := s.Tenants.Paths[tenant]; ok {
		sc.Path = p
		return sc, true
	}
	if !strings.Contains(sc.Path, TenantPlaceholder) {
		return sc, false // only the listed tenants have secrets
	}
	sc.Path = strings.ReplaceAll(sc.Path, TenantPlaceholder, tenant)
	return sc, true
}

// Env is what a source needs of the instance it belongs to, once started.
type Env struct {
	Vault     vaultclient.Vault
	Retry     vaultclient.RetryConfig
	Logger    *zap.Logger
	Telemetry *telemetry.Telemetry
	Status    *status.Folder
	// Run runs work in the background until the instance shuts down.
	Run func(func())
	// Events takes audit events (the export credential changing, tenants
	// opened and closed), naming Component.
	Events    *auditevent.Bus
	Component string
}

// Source is where the request path gets the credential for one export: the
// context names the tenant, when there are tenants.
type Source interface {
	// Credential is what ctx's export carries, or the error it gets.
	Credential(ctx context.Context) (*Value, error)
	// Admit says whether a request of ctx's sender may enter now (the door:
	// vaultidentity tenant_credentials): nil, or the error that holds it.
	Admit(ctx context.Context) error
	// Rejected says the backend refused what was sent for ctx.
	Rejected(ctx context.Context)
	// Start begins the reading and watching, on runCtx.
	Start(ctx, runCtx context.Context, host component.Host, env Env) error
	// Close gives back what Start took (the park's storage).
	Close(ctx context.Context)
	// each runs f for each secret the source holds now.
	each(f func(*Secret))
}

// New is the source the settings ask for: one secret, or one per tenant.
func New(id component.ID, s Settings) Source {
	if s.Tenants != nil {
		return newTenants(id, s)
	}
	return newSingle(id, s)
}

// RegisterGauges reports each of src's credentials: version, the age of the
// version, expiry, availability (and, with tenants, what each has parked).
func RegisterGauges(tel *telemetry.Telemetry, src Source) error {
	if err := tel.RegisterVaultauthSecretVersionCallback(func(_ context.Context, o metric.Int64Observer) error {
		src.each(func(s *Secret) { s.observeVersion(o) })
		return nil
	}); err != nil {
		return err
	}
	if err := tel.RegisterVaultauthSecretVersionAgeSecondsCallback(func(_ context.Context, o metric.Float64Observer) error {
		src.each(func(s *Secret) { s.observeAge(o) })
		return nil
	}); err != nil {
		return err
	}
	if err := tel.RegisterVaultauthCredentialExpirySecondsCallback(func(_ context.Context, o metric.Float64Observer) error {
		src.each(func(s *Secret) { s.observeExpiry(o) })
		return nil
	}); err != nil {
		return err
	}
	if err := tel.RegisterVaultauthCredentialAvailableCallback(func(_ context.Context, o metric.Int64Observer) error {
		src.each(func(s *Secret) { s.observeAvailable(o) })
		return nil
	}); err != nil {
		return err
	}
	if t, ok := src.(*Tenants); ok {
		return t.registerParkGauges()
	}
	return nil
}
