package vaultauthextension

import (
	"errors"
	"fmt"
	"time"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/guard"
)

// GuardConfig is the `guard` block: what a receiver that lists this
// instance in its middlewares (`middlewares: [{id: vaultauth/...}]`) lets
// senders make it decode. OTLP decoding multiplies a body: up to about 75
// times its size in memory for empty spans or attributes, in JSON and
// protobuf alike (docs/security.md), and more for deep JSON nesting, which
// OTLP/JSON decoders take to any depth. The guard bounds both before the
// receiver decodes a byte.
type GuardConfig struct {
	// MaxInflightBytes bounds the request bytes (after decompression) that
	// receivers decode and process at once; requests beyond it wait their
	// turn. Worst-case decoded memory is about 75 times this.
	MaxInflightBytes int64 `mapstructure:"max_inflight_bytes"`
	// MaxJSONDepth refuses (400) OTLP/JSON bodies that nest deeper, as they
	// arrive. The deepest OTLP/JSON that protobuf decoders could take is
	// about 165 levels.
	MaxJSONDepth int `mapstructure:"max_json_depth"`
	// MaxWait is how long an HTTP request waits for its turn before it is
	// refused with 503 and Retry-After (senders retry). gRPC requests wait
	// until their turn: a refusal at that point could only be an error
	// senders do not retry.
	MaxWait time.Duration `mapstructure:"max_wait"`

	_ struct{}
}

func defaultGuardConfig() GuardConfig {
	return GuardConfig{MaxInflightBytes: 4 << 20, MaxJSONDepth: 256, MaxWait: 5 * time.Second}
}

// maxJSONDepthLimit is the deepest max_json_depth accepted.
const maxJSONDepthLimit = 10000

// Validate checks the `guard:` block.
func (c *GuardConfig) Validate() error {
	var errs []error
	if c.MaxInflightBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("max_inflight_bytes: at least 65536 (64 KiB), got %d", c.MaxInflightBytes))
	}
	switch {
	case c.MaxJSONDepth < 32:
		errs = append(errs, fmt.Errorf("max_json_depth: at least 32 (OTLP/JSON spans nest 10 levels before their first attribute), got %d", c.MaxJSONDepth))
	case c.MaxJSONDepth > maxJSONDepthLimit:
		// Deeper would let one body grow a decoder's stack without the
		// limit doing its job; protobuf-go stops at the same depth.
		errs = append(errs, fmt.Errorf("max_json_depth: at most %d (the protobuf decoders' own recursion limit), got %d", maxJSONDepthLimit, c.MaxJSONDepth))
	}
	if c.MaxWait <= 0 {
		errs = append(errs, errors.New("max_wait: must be positive"))
	}
	return errors.Join(errs...)
}

func (c *GuardConfig) settings() guard.Settings {
	return guard.Settings{MaxInflightBytes: c.MaxInflightBytes, MaxJSONDepth: c.MaxJSONDepth, MaxWait: c.MaxWait}
}
