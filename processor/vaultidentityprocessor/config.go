package vaultidentityprocessor

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// Where the identity comes from.
const (
	FromAuth      = "auth"      // the request's auth context (gateway)
	FromExtension = "extension" // this collector's own login (agent, sidecar)
)

// Where it is stamped.
const (
	LevelResource = "resource" // once per ResourceSpans/ResourceLogs/ResourceMetrics
	LevelSpan     = "span"     // every span, log record and data point
)

// What happens to data without an identity.
const (
	// OnMissingReject refuses it: a permanent error with from: auth (the
	// request carried no verified identity), a retryable one with from:
	// extension (this collector's own identity is not known yet). Default.
	OnMissingReject = "reject"
	OnMissingDrop   = "drop" // drop it silently
	OnMissingPass   = "pass" // forward it unstamped (forged vault.* attributes still removed)
)

// Config is the vaultidentity processor's configuration.
type Config struct {
	// From is auth (the identity of the request) or extension (this collector's own).
	From string `mapstructure:"from"`
	// Extension is the vaultauth extension that provides the identity with from: extension.
	Extension component.ID `mapstructure:"extension"`
	// Level is resource or span.
	Level string `mapstructure:"level"`
	// Attributes are the identity attributes stamped, each a vault.* name
	// the identity may carry (vault.entity.id, vault.entity.name,
	// vault.namespace, vault.policies, vault.entity.groups,
	// vault.entity.metadata.<key>, ...). Those the identity lacks are left out.
	Attributes []string `mapstructure:"attributes"`
	// OnMissing is reject, drop or pass.
	OnMissing string `mapstructure:"on_missing"`
	// TenantCredentials is the vaultauth client (with tenants) this
	// gateway exports through. A request whose tenant has no credential
	// ready there is refused with a retryable error (gRPC Unavailable, HTTP
	// 503): its data waits at its sender, not in this gateway's queue, where
	// retrying it would hold up every other tenant's exports.
	TenantCredentials component.ID `mapstructure:"tenant_credentials"`
	// Vouchers are the senders (Vault entity names or ids) trusted to vouch
	// for other identities: node agents that identify their own senders
	// (vaultauth server.kubernetes_pods) and stamp each resource with its
	// sender's identity. A resource such a sender stamped keeps that
	// identity, with vault.vouched_by.entity.id/name naming the voucher;
	// from anyone else every vault.* key is removed as always. With
	// from: auth and level: resource.
	Vouchers []string `mapstructure:"vouchers"`
	// FairShare shares what the pipeline after this processor can take
	// among the tenants (or, without tenants, the senders' entities) when
	// it cannot take everything, so one sender's volume cannot crowd out
	// the others'. With from: auth.
	FairShare FairShareConfig `mapstructure:"fair_share"`
	// TenantLimits caps what each tenant (or, without tenants, each
	// sender's entity) may pass per second, so one sender's volume cannot
	// use up what every sender shares. With from: auth.
	TenantLimits TenantLimitsConfig `mapstructure:"tenant_limits"`

	_ struct{}
}

// TenantLimitsConfig is the `tenant_limits` block: a limit for every
// tenant, and limits for named tenants that replace it.
type TenantLimitsConfig struct {
	TenantLimit `mapstructure:",squash"`
	// Tenants are limits by tenant name (vault.tenant), replacing the
	// default for that tenant; items_per_second 0 leaves it unlimited.
	Tenants map[string]TenantLimit `mapstructure:"tenants"`

	_ struct{}
}

// TenantLimit is one limit.
type TenantLimit struct {
	// ItemsPerSecond is how many spans, data points or log records (those
	// of this processor's pipeline) a tenant may pass per second; 0: no
	// limit.
	ItemsPerSecond int `mapstructure:"items_per_second"`
	// Burst is how many it may pass at once after a quiet spell; 0: one
	// second's worth.
	Burst int `mapstructure:"burst"`

	_ struct{}
}

// enabled says whether any tenant is limited.
func (c TenantLimitsConfig) enabled() bool {
	if c.ItemsPerSecond > 0 {
		return true
	}
	for _, t := range c.Tenants {
		if t.ItemsPerSecond > 0 {
			return true
		}
	}
	return false
}

// validate checks the block; every error names its key.
func (c TenantLimitsConfig) validate(from string) []error {
	var errs []error
	check := func(key string, t TenantLimit) {
		if t.ItemsPerSecond < 0 {
			errs = append(errs, fmt.Errorf("%sitems_per_second: must be 0 (no limit) or more, got %d", key, t.ItemsPerSecond))
		}
		if t.Burst < 0 {
			errs = append(errs, fmt.Errorf("%sburst: must be 0 (one second's worth) or more, got %d", key, t.Burst))
		}
		if t.Burst > 0 && t.ItemsPerSecond == 0 {
			errs = append(errs, fmt.Errorf("%sburst: set without items_per_second, which would leave it unlimited", key))
		}
	}
	check("tenant_limits: ", c.TenantLimit)
	for _, name := range slices.Sorted(maps.Keys(c.Tenants)) {
		if err := identity.ValidTenant(name); err != nil {
			errs = append(errs, fmt.Errorf("tenant_limits: tenants: %q: %w", name, err))
		}
		check(fmt.Sprintf("tenant_limits: tenants: %s: ", name), c.Tenants[name])
	}
	if c.enabled() && from != FromAuth {
		errs = append(errs, errors.New("tenant_limits: only used with from: auth (a gateway's senders)"))
	}
	return errs
}

// FairShareConfig is the `fair_share` block.
type FairShareConfig struct {
	// Enabled turns it on (off by default: experimental).
	Enabled bool `mapstructure:"enabled"`
	// Window is what shares are counted over.
	Window time.Duration `mapstructure:"window"`

	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{
		From:       FromAuth,
		Level:      LevelResource,
		Attributes: []string{identity.EntityID, identity.EntityName, identity.Namespace},
		OnMissing:  OnMissingReject,
		FairShare:  FairShareConfig{Window: time.Second},
	}
}

// Validate checks the configuration; every error names its key.
func (c *Config) Validate() error {
	var errs []error
	switch c.From {
	case FromAuth:
		if c.Extension != (component.ID{}) {
			errs = append(errs, errors.New("extension: only used with from: extension"))
		}
	case FromExtension:
		if c.Extension == (component.ID{}) {
			errs = append(errs, errors.New("extension: required with from: extension (e.g. vaultauth/self)"))
		}
	default:
		errs = append(errs, fmt.Errorf("from: unknown %q (want auth or extension)", c.From))
	}
	if c.Level != LevelResource && c.Level != LevelSpan {
		errs = append(errs, fmt.Errorf("level: unknown %q (want resource or span)", c.Level))
	}
	switch {
	case len(c.Attributes) == 0:
		errs = append(errs, errors.New("attributes: at least one is required"))
	case len(c.Attributes) > maxAttributes:
		errs = append(errs, fmt.Errorf("attributes: at most %d, got %d", maxAttributes, len(c.Attributes)))
	}
	for i, a := range c.Attributes {
		switch {
		case !strings.HasPrefix(a, identity.Prefix) || len(a) == len(identity.Prefix):
			errs = append(errs, fmt.Errorf("attributes::%d: %q is not an identity attribute (want vault.<name>, e.g. %s)", i, a, identity.EntityID))
		case slices.Index(c.Attributes, a) != i:
			errs = append(errs, fmt.Errorf("attributes::%d: %q listed twice", i, a))
		}
	}
	if len(c.Vouchers) > 0 {
		switch {
		case c.From != FromAuth:
			errs = append(errs, errors.New("vouchers: only used with from: auth (a gateway keeping its agents' stamps)"))
		case c.Level != LevelResource:
			errs = append(errs, errors.New("vouchers: only with level: resource (agents vouch per resource)"))
		case !slices.Contains(c.Attributes, identity.EntityID):
			errs = append(errs, fmt.Errorf("vouchers: attributes must include %s, the vouched identity", identity.EntityID))
		}
		for i, v := range c.Vouchers {
			if strings.TrimSpace(v) == "" {
				errs = append(errs, fmt.Errorf("vouchers::%d: empty (want an entity name or id)", i))
			}
		}
	}
	if c.TenantCredentials != (component.ID{}) && c.From != FromAuth {
		errs = append(errs, errors.New("tenant_credentials: only used with from: auth (a gateway's tenants)"))
	}
	errs = append(errs, c.TenantLimits.validate(c.From)...)
	if c.FairShare.Enabled && c.FairShare.Window <= 0 {
		errs = append(errs, fmt.Errorf("fair_share: window: must be positive, got %s", c.FairShare.Window))
	}
	switch c.OnMissing {
	case OnMissingReject, OnMissingDrop, OnMissingPass:
	default:
		errs = append(errs, fmt.Errorf("on_missing: unknown %q (want reject, drop or pass)", c.OnMissing))
	}
	return errors.Join(errs...)
}
