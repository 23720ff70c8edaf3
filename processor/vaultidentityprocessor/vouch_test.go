package vaultidentityprocessor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// agents is a node agent's entity: the gateway's voucher.
var agents = identity.New("ent-agents", "root",
	identity.Attribute{Key: identity.EntityName, Value: "otel-agents"},
	identity.Attribute{Key: identity.CredentialHMAC, Value: "hmac-sha256:agents-token"},
)

// vouchedTracesJSON is what a node agent forwards, as raw OTLP/JSON: a
// resource it stamped for payments' pod; one it stamped for checkout, onto
// which the workload had written forgeries the agent's scrub would have
// removed (here they stand for a voucher's stamp tampered with on the
// way: a second vault.entity.id); one unstamped; and one stamped for
// payments carrying keys only the gateway may write (who vouched, the
// credential's HMAC), forged, and a nested identity key.
func vouchedTracesJSON() string {
	kv := func(k, v string) string { return `{"key":"` + k + `","value":{"stringValue":"` + v + `"}}` }
	stamp := func(id, name string) []string {
		return []string{kv("vault.entity.id", id), kv("vault.entity.name", name), kv("vault.namespace", "root")}
	}
	resource := func(attrs ...string) string {
		return `{"resource":{"attributes":[` + strings.Join(attrs, ",") + `]},"scopeSpans":[{"spans":[{"traceId":` + traceID +
			`,"spanId":` + spanID + `,"name":"op"}]}]}`
	}
	payments := append(stamp("ent-payments", "payments"), kv("service.name", "payments"))
	tampered := append(stamp("ent-checkout", "checkout"), kv("vault.entity.id", "ent-payments"))
	forged := append(stamp("ent-payments", "payments"),
		kv("vault.vouched_by.entity.id", "ent-FORGED"), kv("vault.credential.hmac", "hmac-sha256:FORGED"),
		`{"key":"app","value":{"kvlistValue":{"values":[`+kv("vault.entity.id", "ent-FORGED")+`]}}}`)
	return `{"resourceSpans":[` + strings.Join([]string{
		resource(payments...), resource(tampered...), resource(kv("service.name", "unstamped")), resource(forged...),
	}, ",") + `]}`
}

// decodeVouched returns the document decoded from JSON, and from its
// protobuf encoding (the wire form an agent's OTLP exporter sends).
func decodeVouched(t *testing.T) map[string]ptrace.Traces {
	t.Helper()
	fromJSON, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(vouchedTracesJSON()))
	require.NoError(t, err)
	require.Equal(t, 2, count(fromJSON.ResourceSpans().At(1).Resource().Attributes(), "vault.entity.id"), "pdata dropped a duplicate")
	pb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(fromJSON)
	require.NoError(t, err)
	fromProto, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(pb)
	require.NoError(t, err)
	return map[string]ptrace.Traces{"json": fromJSON, "protobuf": fromProto}
}

func vouchingGateway(t *testing.T) *processors {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Attributes = append(cfg.Attributes, identity.CredentialHMAC)
	cfg.Vouchers = []string{"otel-agents"}
	return newProcessors(t, cfg, componenttest.NewNopHost())
}

// A gateway keeps the identities its voucher (the node agents' entity)
// stamped on resources, with who vouched and the voucher's credential
// HMAC; a resource whose stamp is not one the agent makes (a key twice),
// or that has none, gets the voucher's own identity. Keys only the
// gateway writes are never taken from the voucher. Counted per key.
func TestVoucherKeepsTheIdentitiesItStamped(t *testing.T) {
	for wire, td := range decodeVouched(t) {
		t.Run(wire, func(t *testing.T) {
			p := vouchingGateway(t)
			require.NoError(t, p.traces.ConsumeTraces(withIdentity(agents), td))
			rss := p.tsink.AllTraces()[0].ResourceSpans()
			want := []map[string]string{
				{"vault.entity.id": "ent-payments", "vault.entity.name": "payments", "vault.vouched_by.entity.id": "ent-agents"},
				{"vault.entity.id": "ent-agents", "vault.entity.name": "otel-agents", "vault.vouched_by.entity.id": ""},
				{"vault.entity.id": "ent-agents", "vault.entity.name": "otel-agents", "vault.vouched_by.entity.id": ""},
				{"vault.entity.id": "ent-payments", "vault.entity.name": "payments", "vault.vouched_by.entity.id": "ent-agents"},
			}
			require.Equal(t, len(want), rss.Len())
			for i, w := range want {
				attrs := rss.At(i).Resource().Attributes()
				for k, v := range w {
					if v == "" {
						assert.Zero(t, count(attrs, k), "resource %d: %s", i, k)
						continue
					}
					assert.Equal(t, []string{v}, values(attrs, k), "resource %d: %s", i, k)
				}
				assert.Equal(t, []string{"hmac-sha256:agents-token"}, values(attrs, "vault.credential.hmac"), "resource %d: the credential it was sent with", i)
				assert.Equal(t, 1, count(attrs, "vault.namespace"), "resource %d", i)
				if app, ok := attrs.Get("app"); ok {
					assert.Zero(t, count(app.Map(), "vault.entity.id"), "resource %d: a nested identity key survived", i)
				}
			}
			assert.Equal(t, []string{"otel-agents"}, values(rss.At(0).Resource().Attributes(), "vault.vouched_by.entity.name"))
		})
	}
}

// The same data from a sender that is not a voucher: every stamp it
// carries is removed, and each resource gets the sender's own identity.
func TestOnlyVouchersVouch(t *testing.T) {
	for wire, td := range decodeVouched(t) {
		t.Run(wire, func(t *testing.T) {
			p := vouchingGateway(t)
			require.NoError(t, p.traces.ConsumeTraces(withIdentity(alice), td))
			rss := p.tsink.AllTraces()[0].ResourceSpans()
			for i := 0; i < rss.Len(); i++ {
				attrs := rss.At(i).Resource().Attributes()
				assert.Equal(t, []string{"ent-alice"}, values(attrs, "vault.entity.id"), "resource %d", i)
				assert.Zero(t, count(attrs, "vault.vouched_by.entity.id"), "resource %d", i)
			}
		})
	}
}

func TestVouchersValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"span level":     func(c *Config) { c.Level = LevelSpan },
		"from extension": func(c *Config) { c.From, c.Extension = FromExtension, selfID },
		"no entity id":   func(c *Config) { c.Attributes = []string{identity.EntityName} },
		"empty":          func(c *Config) { c.Vouchers = []string{" "} },
	} {
		cfg := createDefaultConfig().(*Config)
		cfg.Vouchers = []string{"otel-agents"}
		mutate(cfg)
		err := cfg.Validate()
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "vouchers", name)
	}
}
