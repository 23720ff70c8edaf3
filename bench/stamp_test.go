package bench

import (
	"context"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/attributesprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/resourceprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor"
)

// fromContext is the contrib configuration doing what vaultidentity does
// (without the anti-spoofing scrub, which contrib cannot express).
var fromContext = map[string]any{"attributes": []any{
	map[string]any{"key": "vault.entity.id", "from_context": "auth.vault.entity.id", "action": "upsert"},
	map[string]any{"key": "vault.entity.name", "from_context": "auth.vault.entity.name", "action": "upsert"},
	map[string]any{"key": "vault.namespace", "from_context": "auth.vault.namespace", "action": "upsert"},
}}

type stampCase struct {
	name string
	f    processor.Factory
	conf map[string]any
}

// stampCases are ours and the anchor at each level.
func stampCases() []stampCase {
	return []stampCase{
		{"level=resource/impl=contrib", resourceprocessor.NewFactory(), fromContext},
		{"level=resource/impl=ours", vaultidentityprocessor.NewFactory(), map[string]any{"level": "resource"}},
		{"level=span/impl=contrib", attributesprocessor.NewFactory(), map[string]any{"actions": fromContext["attributes"]}},
		{"level=span/impl=ours", vaultidentityprocessor.NewFactory(), map[string]any{"level": "span"}},
	}
}

func config(b *testing.B, f processor.Factory, conf map[string]any) component.Config {
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(conf).Unmarshal(cfg); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// BenchmarkStamp processes one 10,000-item batch per op; ns/item and
// allocs/item divide by 10,000. The batch is reused: from the second op on,
// both sides overwrite the attributes they wrote (ours also scrubs).
func BenchmarkStamp(b *testing.B) {
	cases := append(stampCases(), stampCase{
		// What contrib needs on top of resourceprocessor for the same
		// protection at resource level: deleting vault.* from every item.
		"level=resource-scrub-only/impl=contrib", attributesprocessor.NewFactory(), map[string]any{"actions": []any{
			map[string]any{"pattern": `^vault\..*`, "action": "delete"},
		}},
	})
	for _, sig := range []string{"traces", "logs", "metrics"} {
		for _, c := range cases {
			b.Run("signal="+sig+"/"+c.name, func(b *testing.B) {
				cfg := config(b, c.f, c.conf)
				set := processortest.NewNopSettings(c.f.Type())
				ctx := authContext()
				var consume func() error
				switch sig {
				case "traces":
					p, err := c.f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
					start(b, p, err)
					td := traces()
					consume = func() error { return p.ConsumeTraces(ctx, td) }
				case "logs":
					p, err := c.f.CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
					start(b, p, err)
					ld := logs()
					consume = func() error { return p.ConsumeLogs(ctx, ld) }
				case "metrics":
					p, err := c.f.CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
					start(b, p, err)
					md := metrics()
					consume = func() error { return p.ConsumeMetrics(ctx, md) }
				}
				if err := consume(); err != nil { // first pass writes, later passes overwrite
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := consume(); err != nil {
						b.Fatal(err)
					}
				}
				perItem(b)
			})
		}
	}
}

func start(b *testing.B, p component.Component, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
}

// perItem reports ns and allocations per span/log record/data point.
func perItem(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/itemsPerCall, "ns/item")
}

// BenchmarkStampCredentialHMAC: the audit join key is one more attribute
// of the cached identity, stamped like the others. Ours with and without
// vault.credential.hmac in attributes (and on the identity), traces, per
// level: the allocations per item must not change.
func BenchmarkStampCredentialHMAC(b *testing.B) {
	const hmac = "hmac-sha256:5d9e0f3c1b2a4e6d8f7a9c0b1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e"
	for _, level := range []string{"resource", "span"} {
		for _, with := range []bool{false, true} {
			name := "level=" + level + "/hmac=without"
			attrs := []any{"vault.entity.id", "vault.entity.name", "vault.namespace"}
			ctx := authContext()
			if with {
				name = "level=" + level + "/hmac=with"
				attrs = append(attrs, "vault.credential.hmac")
				ctx = authContextWith(identity.Attribute{Key: identity.CredentialHMAC, Value: hmac})
			}
			b.Run(name, func(b *testing.B) {
				f := vaultidentityprocessor.NewFactory()
				p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()),
					config(b, f, map[string]any{"level": level, "attributes": attrs}), consumertest.NewNop())
				start(b, p, err)
				td := traces()
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := p.ConsumeTraces(ctx, td); err != nil {
						b.Fatal(err)
					}
				}
				perItem(b)
			})
		}
	}
}
