package vaultidentityprocessor

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcmetadata "google.golang.org/grpc/metadata"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
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

func startProcessor(t *testing.T, host component.Host, conf map[string]any, next consumer.Traces) processor.Traces {
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
		senders := values(td.ResourceSpans().At(0).Resource().Attributes(), "sender")
		require.Len(t, senders, 1)
		name, _, _ := strings.Cut(senders[0], "/")
		check := &checker{stampAt: atResource, want: []identity.Attribute{
			{Key: identity.EntityID, Value: byEntity[name]}, {Key: identity.EntityName, Value: name}, {Key: identity.Namespace, Value: "root"},
		}}
		check.traces(td)
		assert.Empty(t, check.violations, senders[0])
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
		return proc.ConsumeTraces(context.Background(), sent("agent")) == nil
	}, eventually, poll, "the agent never knew its own identity")
	check := &checker{stampAt: atItem, want: []identity.Attribute{
		{Key: identity.EntityID, Value: entityID}, {Key: identity.EntityName, Value: entityName}, {Key: identity.Namespace, Value: "root"},
	}}
	check.traces(sink.AllTraces()[0])
	assert.Empty(t, check.violations)
	assert.Equal(t, 1, check.stamped)
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

// The forged documents sent raw over the wire, as an attacker would: OTLP
// JSON and protobuf over HTTP, protobuf over gRPC, with a valid identity
// token. The gateway (real receiver with vaultauth, vaultidentity, a real
// exporter) accepts them, and what it sends on holds each stamped key once
// and no other identity key: counted on what the next hop received.
func TestForgedDuplicatesOverTheWire(t *testing.T) {
	v := vaulttest.Start(t)
	audience := v.OIDCRole(t, "otel", "otel-agent", `{"entity_name": {{identity.entity.name}}}`, "1h")
	v.PutPolicy(t, "otel-agent", `path "identity/oidc/token/otel-agent" { capabilities = ["read"] }`)
	alice := v.UserpassWorkload(t, "alice", "otel-agent")
	jwt := v.IdentityToken(t, alice.Token, "otel-agent")

	gatewayID := component.MustNewIDWithName("vaultauth", "gateway")
	host := pipelinetest.NewHost(map[component.ID]component.Component{gatewayID: startExtension(t, gatewayID, map[string]any{
		"vault":  map[string]any{"address": v.Addr},
		"server": map[string]any{"identity_token": map[string]any{"audience": audience}},
	})})
	nextHop := &consumertest.TracesSink{}
	downstream := pipelinetest.StartTracesReceiver(t, host, nil, nextHop)
	exp := pipelinetest.StartTracesExporter(t, host, "otlp_grpc", downstream.ExporterConfig("otlp_grpc", map[string]any{
		"retry_on_failure": map[string]any{"enabled": false}, "sending_queue": map[string]any{"enabled": false},
	}))
	proc := startProcessor(t, host, map[string]any{}, exp)
	gateway := pipelinetest.StartTracesReceiver(t, host, map[string]any{"auth": map[string]any{"authenticator": gatewayID.String()}}, proc)

	doc := forgedTracesJSON(alice.EntityID)
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(doc))
	require.NoError(t, err)
	proto, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)

	post := func(contentType string, body []byte) {
		req, err := http.NewRequest(http.MethodPost, gateway.HTTPAddr+"/v1/traces", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+jwt)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, contentType)
	}
	post("application/json", []byte(doc))
	post("application/x-protobuf", proto)

	conn, err := grpc.NewClient(gateway.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := grpcmetadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+jwt)
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	require.NoError(t, err)

	require.Len(t, nextHop.AllTraces(), 3)
	for i, got := range nextHop.AllTraces() {
		check := &checker{stampAt: atResource, want: []identity.Attribute{
			{Key: identity.EntityID, Value: alice.EntityID}, {Key: identity.EntityName, Value: "alice"}, {Key: identity.Namespace, Value: "root"},
		}}
		check.traces(got)
		assert.Empty(t, check.violations, "request %d", i)
		assert.Equal(t, 3, check.stamped, "request %d: three resources stamped", i)
	}
}
