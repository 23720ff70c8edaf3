package vaultidentityprocessor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor/internal/metadata"
)

const (
	eventually = 20 * time.Second
	poll       = 10 * time.Millisecond
)

// startExtension creates and starts a vaultauth extension from a user-style config.
func startExtension(t *testing.T, id component.ID, conf map[string]any) extension.Extension {
	t.Helper()
	f := vaultauthextension.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(conf).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = id
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componentHostStub{}))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext
}

type componentHostStub struct{}

func (componentHostStub) GetExtensions() map[component.ID]component.Component { return nil }

func startProcessor(t *testing.T, host component.Host, conf map[string]any, next *consumertest.TracesSink) processor.Traces {
	t.Helper()
	cfg := createDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(conf).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func sent(sender string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("sender", sender)
	rs.Resource().Attributes().PutStr("vault.entity.id", "forged-by-"+sender)
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("op")
	span.Attributes().PutStr("vault.entity.name", "forged")
	return td
}

// Gateway: otlp receiver (auth: vaultauth/gateway, identity_token mode) ->
// vaultidentity -> sink. Agents alice and bob export over gRPC and HTTP with
// their own identity tokens (vaultauth client: identity_token). Every span
// arrives stamped with its sender's entity id, name and namespace; the
// identity each sender forged does not survive.
func TestGatewayStampsEachWorkloadsIdentity(t *testing.T) {
	v := vaulttest.Start(t)
	audience := v.OIDCRole(t, "otel", "otel-agent", `{"entity_name": {{identity.entity.name}}}`, "1h")
	v.PutPolicy(t, "otel-agent", `path "identity/oidc/token/otel-agent" { capabilities = ["read"] }`)
	workloads := []vaulttest.Workload{
		v.UserpassWorkload(t, "alice", "otel-agent"),
		v.UserpassWorkload(t, "bob", "otel-agent"),
	}

	gatewayID := component.MustNewIDWithName("vaultauth", "gateway")
	exts := map[component.ID]component.Component{
		gatewayID: startExtension(t, gatewayID, map[string]any{
			"vault":  map[string]any{"address": v.Addr},
			"server": map[string]any{"identity_token": map[string]any{"audience": audience}},
		}),
	}
	for _, w := range workloads {
		id := component.MustNewIDWithName("vaultauth", w.Name)
		exts[id] = startExtension(t, id, map[string]any{
			"vault":  map[string]any{"address": v.Addr},
			"auth":   map[string]any{"method": "token", "token": w.Token},
			"client": map[string]any{"identity_token": map[string]any{"role": "otel-agent"}, "refresh_interval": "100ms"},
		})
	}
	host := pipelinetest.NewHost(exts)
	sink := &consumertest.TracesSink{}
	proc := startProcessor(t, host, map[string]any{}, sink)
	rcv := pipelinetest.StartTracesReceiver(t, host, map[string]any{
		"auth": map[string]any{"authenticator": gatewayID.String()},
	}, proc)

	for _, w := range workloads {
		for _, kind := range []string{"otlp_grpc", "otlp_http"} {
			exp := pipelinetest.StartTracesExporter(t, host, kind, rcv.ExporterConfig(kind, map[string]any{
				"auth":             map[string]any{"authenticator": "vaultauth/" + w.Name},
				"retry_on_failure": map[string]any{"enabled": false},
				"sending_queue":    map[string]any{"enabled": false},
			}))
			require.Eventually(t, func() bool {
				return exp.ConsumeTraces(context.Background(), sent(w.Name+"/"+kind)) == nil
			}, eventually, poll, "%s over %s never got through", w.Name, kind)
		}
	}

	byEntity := map[string]string{}
	for _, w := range workloads {
		byEntity[w.Name] = w.EntityID
	}
	require.Len(t, sink.AllTraces(), 4)
	for _, td := range sink.AllTraces() {
		rs := td.ResourceSpans().At(0)
		attrs := rs.Resource().Attributes().AsRaw()
		sender := attrs["sender"].(string)
		name, _, _ := strings.Cut(sender, "/")
		assert.Equal(t, byEntity[name], attrs["vault.entity.id"], sender)
		assert.Equal(t, name, attrs["vault.entity.name"], sender)
		assert.Equal(t, "root", attrs["vault.namespace"], sender)
		span := rs.ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw()
		assert.NotContains(t, span, "vault.entity.name", "%s: forged span attribute survived", sender)
	}

	// A sender without a valid identity is refused by the receiver, and told nothing more.
	for _, kind := range []string{"otlp_grpc", "otlp_http"} {
		err := pipelinetest.StartTracesExporter(t, host, kind, rcv.ExporterConfig(kind, map[string]any{
			"headers":          map[string]any{"authorization": "Bearer forged.jwt.token"},
			"retry_on_failure": map[string]any{"enabled": false},
			"sending_queue":    map[string]any{"enabled": false},
		})).ConsumeTraces(context.Background(), sent("mallory"))
		require.Error(t, err, kind)
		if kind == "otlp_grpc" {
			assert.Contains(t, err.Error(), "Unauthenticated")
		} else {
			assert.Contains(t, err.Error(), "401")
		}
		assert.NotContains(t, err.Error(), "JWT", "the reason must not reach the sender")
	}
	assert.Len(t, sink.AllTraces(), 4, "a refused sender's data reached the pipeline")
}

// Agent mode: the processor stamps this collector's own identity, from the
// vaultauth extension's AppRole login.
func TestAgentStampsOwnIdentity(t *testing.T) {
	v := vaulttest.Start(t)
	v.PutPolicy(t, "otel-self", `path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] }`)
	roleID, secretID := v.AppRole(t, "otel-agent", map[string]any{"token_policies": "otel-self"})
	selfID := component.MustNewIDWithName("vaultauth", "self")
	ext := startExtension(t, selfID, map[string]any{
		"vault": map[string]any{"address": v.Addr},
		"auth":  map[string]any{"method": "approle", "role_id": roleID, "secret_id": secretID},
	})
	host := pipelinetest.NewHost(map[component.ID]component.Component{selfID: ext})
	sink := &consumertest.TracesSink{}
	proc := startProcessor(t, host, map[string]any{"from": "extension", "extension": "vaultauth/self", "level": "span"}, sink)

	// The AppRole login's entity, as Vault itself reports it.
	auths, err := v.Client.Sys().ListAuth()
	require.NoError(t, err)
	var entityID, entityName string
	require.Eventually(t, func() bool {
		sec, err := v.Client.Logical().Write("identity/lookup/entity", map[string]any{
			"alias_name": roleID, "alias_mount_accessor": auths["approle/"].Accessor,
		})
		if err != nil || sec == nil {
			return false
		}
		entityID, entityName = sec.Data["id"].(string), sec.Data["name"].(string)
		return true
	}, eventually, poll)

	require.Eventually(t, func() bool {
		sink.Reset()
		require.NoError(t, proc.ConsumeTraces(context.Background(), sent("agent")))
		span := sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw()
		return span["vault.entity.id"] == entityID
	}, eventually, poll, "the agent never stamped its own entity")
	span := sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw()
	assert.Equal(t, entityName, span["vault.entity.name"])
	assert.Equal(t, "root", span["vault.namespace"])
	res := sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes().AsRaw()
	assert.NotContains(t, res, "vault.entity.id", "the forged resource attribute survived")
}

func TestFromExtensionNeedsTheExtension(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.From, cfg.Extension = FromExtension, component.MustNewIDWithName("vaultauth", "missing")
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, &consumertest.TracesSink{})
	require.NoError(t, err)
	err = p.Start(context.Background(), pipelinetest.NewHost(nil))
	require.ErrorContains(t, err, "vaultauth/missing")
	require.ErrorContains(t, err, "service.extensions")
}
