package vaultidentityprocessor

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor/internal/metadata"
)

func load(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.MustNewIDWithName(metadata.Type.String(), name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	return cfg
}

func TestLoadConfig(t *testing.T) {
	assert.Equal(t, &Config{
		From: "auth", Level: "resource", OnMissing: "reject",
		Attributes: []string{"vault.entity.id", "vault.entity.name", "vault.namespace"},
		FairShare:  FairShareConfig{Window: time.Second},
	}, load(t, ""))
	assert.Equal(t, &Config{
		From: "extension", Extension: component.MustNewIDWithName("vaultauth", "self"), Level: "span", OnMissing: "reject",
		Attributes: []string{"vault.entity.id", "vault.entity.name", "vault.namespace", "vault.policies"},
		FairShare:  FairShareConfig{Window: time.Second},
	}, load(t, "agent"))
	assert.Equal(t, FairShareConfig{Enabled: true, Window: 2 * time.Second}, load(t, "shared").FairShare)
	assert.Equal(t, "pass", load(t, "permissive").OnMissing, "fail open only when asked")
	assert.Equal(t, []string{"vault.entity.id", "vault.entity.metadata.team", "vault.entity.groups"}, load(t, "team").Attributes)
	assert.Equal(t, component.MustNewIDWithName("vaultauth", "lightstep"), load(t, "tenants").TenantCredentials)
	assert.Equal(t, TenantLimitsConfig{
		TenantLimit: TenantLimit{ItemsPerSecond: 3000},
		Tenants:     map[string]TenantLimit{"team-a": {ItemsPerSecond: 10000, Burst: 20000}, "team-b": {}},
	}, load(t, "limited").TenantLimits)
}

func TestValidateNamesTheKey(t *testing.T) {
	for want, mutate := range map[string]func(*Config){
		"from:":          func(c *Config) { c.From = "header" },
		"extension:":     func(c *Config) { c.From = "extension" },
		"level:":         func(c *Config) { c.Level = "scope" },
		"attributes:":    func(c *Config) { c.Attributes = nil },
		"attributes::1:": func(c *Config) { c.Attributes = []string{"vault.entity.id", "team"} },
		"attributes::2:": func(c *Config) { c.Attributes = []string{"vault.entity.id", "vault.x", "vault.x"} },
		"attributes: at most": func(c *Config) {
			c.Attributes = nil
			for i := range 17 {
				c.Attributes = append(c.Attributes, fmt.Sprint("vault.a", i))
			}
		},
		"on_missing:":                      func(c *Config) { c.OnMissing = "ignore" },
		"fair_share: window:":              func(c *Config) { c.FairShare.Enabled, c.FairShare.Window = true, 0 },
		"tenant_limits: items_per_second:": func(c *Config) { c.TenantLimits.ItemsPerSecond = -1 },
		"tenant_limits: tenants: team-a: burst:": func(c *Config) {
			c.TenantLimits.Tenants = map[string]TenantLimit{"team-a": {ItemsPerSecond: 10, Burst: -1}}
		},
		"tenant_limits: burst: set without items_per_second": func(c *Config) { c.TenantLimits.Burst = 100 },
		"tenant_limits: tenants: team-x: burst: set without": func(c *Config) {
			c.TenantLimits.Tenants = map[string]TenantLimit{"team-x": {Burst: 5000}}
		},
		"tenant_limits: tenants: \"Team A\":": func(c *Config) {
			c.TenantLimits.Tenants = map[string]TenantLimit{"Team A": {ItemsPerSecond: 10}}
		},
		"tenant_limits: only used with from: auth": func(c *Config) {
			c.From, c.Extension, c.TenantLimits.ItemsPerSecond = FromExtension, selfID, 100
		},
		"tenant_credentials:": func(c *Config) {
			c.From, c.Extension, c.TenantCredentials = FromExtension, selfID, component.MustNewIDWithName("vaultauth", "lightstep")
		},
	} {
		cfg := createDefaultConfig().(*Config)
		mutate(cfg)
		err := cfg.Validate()
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
	}
}
