package vaultauditreceiver

import (
	"errors"
	"fmt"
	"slices"

	"go.opentelemetry.io/collector/component"
)

// Config is the vaultaudit receiver's configuration.
type Config struct {
	// Extensions are the vaultauth instances whose audit events are
	// emitted, e.g. [vaultauth/agents, vaultauth/lightstep].
	Extensions []component.ID `mapstructure:"extensions"`
	// QueueSize bounds the events waiting for the logs pipeline; beyond it
	// events are dropped and counted (otelcol_vaultaudit_events_dropped),
	// so a slow pipeline never holds up an extension.
	QueueSize int `mapstructure:"queue_size"`

	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{QueueSize: 1000}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Extensions) == 0 {
		errs = append(errs, errors.New("extensions: at least one vaultauth extension is required"))
	}
	for i, id := range c.Extensions {
		if slices.Index(c.Extensions, id) != i {
			errs = append(errs, fmt.Errorf("extensions::%d: %s listed twice", i, id))
		}
	}
	if c.QueueSize <= 0 {
		errs = append(errs, fmt.Errorf("queue_size: must be positive, got %d", c.QueueSize))
	}
	return errors.Join(errs...)
}
