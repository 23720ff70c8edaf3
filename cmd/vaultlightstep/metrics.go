package main

import (
	"fmt"
	"io"
	"math"

	"github.com/vaultlightstep/vaultlightstep/internal/promtext"
)

// versionMetric is the gauge every vaultauth client instance exports: the
// KV v2 version of the secret it sends (0 before it has one).
const versionMetric = "otelcol_vaultauth_secret_version"

// secretVersion is the version a collector's metrics say the extension
// sends, for tenant ("" for the single-secret extension: its series carries
// tenant="" or no tenant label). Several matching series (there should be
// one) give the lowest: the conservative answer.
func secretVersion(r io.Reader, extension, tenant string) (int, error) {
	samples, err := promtext.Samples(r, versionMetric)
	if err != nil {
		return 0, err
	}
	found := false
	lowest := math.Inf(1)
	for _, s := range samples {
		if s.Labels["extension"] != extension || s.Labels["tenant"] != tenant {
			continue
		}
		found = true
		lowest = math.Min(lowest, s.Value)
	}
	if !found {
		return 0, fmt.Errorf("no %s series for extension %q, tenant %q", versionMetric, extension, tenant)
	}
	if math.IsNaN(lowest) || lowest < 0 || lowest > math.MaxInt32 {
		return 0, fmt.Errorf("%s is %v: not a version", versionMetric, lowest)
	}
	return int(lowest), nil
}
