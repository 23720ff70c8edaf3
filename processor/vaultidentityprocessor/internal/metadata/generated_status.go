// Code in the shape mdatagen generates from metadata.yaml (kept by hand: the
// mdatagen release matching v0.165.0 is not obtainable from the module proxy).

package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("vaultidentity")
	ScopeName = "github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor"
)

const (
	TracesStability  = component.StabilityLevelAlpha
	MetricsStability = component.StabilityLevelAlpha
	LogsStability    = component.StabilityLevelAlpha
)
