package vaultidentityprocessor

import (
	"errors"
	"fmt"
	"slices"

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
	OnMissingPass   = "pass"   // forward it (forged vault.* attributes still removed)
	OnMissingDrop   = "drop"   // drop it silently
	OnMissingReject = "reject" // return an error to the sender
)

// Attributes that can be stamped.
var stampable = []string{identity.EntityID, identity.EntityName, identity.Namespace, identity.Policies}

// Config is the vaultidentity processor's configuration.
type Config struct {
	// From is auth (the identity of the request) or extension (this collector's own).
	From string `mapstructure:"from"`
	// Extension is the vaultauth extension that provides the identity with from: extension.
	Extension component.ID `mapstructure:"extension"`
	// Level is resource or span.
	Level string `mapstructure:"level"`
	// Attributes stamped, from vault.entity.id, vault.entity.name, vault.namespace, vault.policies.
	Attributes []string `mapstructure:"attributes"`
	// OnMissing is pass, drop or reject.
	OnMissing string `mapstructure:"on_missing"`

	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{
		From:       FromAuth,
		Level:      LevelResource,
		Attributes: []string{identity.EntityID, identity.EntityName, identity.Namespace},
		OnMissing:  OnMissingPass,
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
	if len(c.Attributes) == 0 {
		errs = append(errs, errors.New("attributes: at least one is required"))
	}
	for i, a := range c.Attributes {
		if !slices.Contains(stampable, a) {
			errs = append(errs, fmt.Errorf("attributes[%d]: unknown %q (want one of %v)", i, a, stampable))
		} else if slices.Index(c.Attributes, a) != i {
			errs = append(errs, fmt.Errorf("attributes[%d]: %q listed twice", i, a))
		}
	}
	switch c.OnMissing {
	case OnMissingPass, OnMissingDrop, OnMissingReject:
	default:
		errs = append(errs, fmt.Errorf("on_missing: unknown %q (want pass, drop or reject)", c.OnMissing))
	}
	return errors.Join(errs...)
}
