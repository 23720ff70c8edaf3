package vaultauthextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap/zapcore"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// create makes the extension a config asks for, as the Collector does.
func create(t *testing.T, cfg *Config) extension.Extension {
	t.Helper()
	set := extensiontest.NewNopSettings(metadata.Type)
	set.ID = extID
	e, err := NewFactory().Create(context.Background(), set, cfg)
	require.NoError(t, err)
	return e
}

// The factory returns the type the config asks for: each implements only
// the authenticator interfaces of its job.
func TestFactoryReturnsTheJobsType(t *testing.T) {
	client := create(t, withToken(clientConfig("http://127.0.0.1:1"), "t"))
	server := create(t, serverConfig("http://127.0.0.1:1", "aud"))
	identityOnly := createDefaultConfig()
	identityOnly.Vault.Address = "http://127.0.0.1:1"
	self := create(t, withToken(identityOnly, "t"))

	for name, tc := range map[string]struct {
		ext                  extension.Extension
		client, server, self bool
	}{
		"client":   {client, true, false, true},
		"server":   {server, false, true, true},
		"identity": {self, false, false, true},
	} {
		_, isGRPC := tc.ext.(extensionauth.GRPCClient)
		_, isHTTP := tc.ext.(extensionauth.HTTPClient)
		_, isServer := tc.ext.(extensionauth.Server)
		_, isProvider := tc.ext.(identity.Provider)
		assert.Equal(t, tc.client, isGRPC && isHTTP, name)
		assert.Equal(t, tc.server, isServer, name)
		assert.Equal(t, tc.self, isProvider, name)
	}
}

// Every job starts and stops cleanly, with Vault unreachable (the package's
// goroutine-leak check runs after all tests).
func TestEachJobStartsAndStops(t *testing.T) {
	lookup := withToken(serverConfig("http://127.0.0.1:1", ""), "t")
	lookup.Server.Get().IdentityToken = configoptional.None[IdentityTokenServerConfig]()
	lookup.Server.Get().TokenLookup.GetOrInsertDefault()
	self := withToken(createDefaultConfig(), "t")
	self.Vault.Address = "http://127.0.0.1:1"
	for name, cfg := range map[string]*Config{
		"client":                withToken(clientConfig("http://127.0.0.1:1"), "t"),
		"server identity_token": serverConfig("http://127.0.0.1:1", "aud"),
		"server token_lookup":   lookup,
		"identity only":         self,
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, validate(cfg))
			e := create(t, cfg)
			require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
			require.NoError(t, e.Shutdown(context.Background()))
		})
	}
}

// snapshot is the Collector's effective config, as NotifyConfigSnapshot gets it.
func snapshot(raw map[string]any) extensioncapabilities.ConfigSnapshot {
	conf := confmap.NewFromStringMap(raw)
	return extensioncapabilities.NewConfigSnapshot(conf, conf)
}

// pipeline is a collector config with one traces pipeline.
func pipeline(receiverAuth, exporterAuth string, processors map[string]any) map[string]any {
	names := []any{}
	for n := range processors {
		names = append(names, n)
	}
	return map[string]any{
		"receivers": map[string]any{"otlp": map[string]any{"protocols": map[string]any{
			"grpc": map[string]any{"auth": map[string]any{"authenticator": receiverAuth}},
		}}},
		"processors": processors,
		"exporters": map[string]any{"otlp_grpc/lightstep": map[string]any{
			"endpoint": "ingest.lightstep.com:443", "auth": map[string]any{"authenticator": exporterAuth},
		}},
		"service": map[string]any{"pipelines": map[string]any{"traces": map[string]any{
			"receivers": []any{"otlp"}, "processors": names, "exporters": []any{"otlp_grpc/lightstep"},
		}}},
	}
}

// An instance used for a job it does not do stops the collector at start,
// with an error naming the instance, the missing block and where it is used.
func TestMisuseFailsAtStart(t *testing.T) {
	client := create(t, withToken(clientConfig("http://127.0.0.1:1"), "t")).(extensioncapabilities.ConfigSnapshotWatcher)
	server := create(t, serverConfig("http://127.0.0.1:1", "aud")).(extensioncapabilities.ConfigSnapshotWatcher)
	me := extID.String()

	err := client.NotifyConfigSnapshot(context.Background(), snapshot(pipeline(me, me, nil)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `vaultauth/lightstep has no server block, but receiver "otlp" uses it as its authenticator (receivers::otlp::protocols::grpc::auth)`)
	assert.NotContains(t, err.Error(), "exporter", "the client serves its exporter")

	err = server.NotifyConfigSnapshot(context.Background(), snapshot(pipeline(me, me, map[string]any{
		"vaultidentity": map[string]any{"from": "extension", "extension": me},
	})))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `vaultauth/lightstep has no client block, but exporter "otlp_grpc/lightstep" uses it as its authenticator (exporters::otlp_grpc/lightstep::auth)`)
	assert.Contains(t, err.Error(), `vaultauth/lightstep has no auth block, but processor "vaultidentity" (from: extension) needs this collector's own Vault identity`)

	// Used as it should be: no error. Components outside every pipeline are not checked.
	ok := pipeline("vaultauth/agents", me, map[string]any{"vaultidentity": map[string]any{"from": "extension", "extension": me}})
	ok["receivers"].(map[string]any)["otlp/unused"] = map[string]any{"protocols": map[string]any{
		"http": map[string]any{"auth": map[string]any{"authenticator": me}},
	}}
	require.NoError(t, client.NotifyConfigSnapshot(context.Background(), snapshot(ok)))
}

// A tenant-routing client refuses, at start, pipelines that would merge
// tenants (a sending queue batching without the tenant partition, or a
// batch processor without the tenant in its metadata_keys) and pipelines
// where one tenant without a token would stall the others (no vaultidentity
// with tenant_credentials naming it).
func TestTenantBatchingChecked(t *testing.T) {
	v := "http://127.0.0.1:1"
	cfg := withToken(clientConfig(v), "t")
	cfg.Client.Get().Secret.Get().Path = "secret/data/lightstep/teams/{tenant}"
	cfg.Client.Get().Tenants = configoptional.Some(TenantsConfig{MaxTenants: 10, IdleTimeout: time.Hour, Park: defaultParkConfig()})
	client := create(t, cfg).(extensioncapabilities.ConfigSnapshotWatcher)
	me := extID.String()

	conf := pipeline("vaultauth/agents", me, map[string]any{"batch": map[string]any{}})
	conf["exporters"].(map[string]any)["otlp_grpc/lightstep"].(map[string]any)["sending_queue"] = map[string]any{
		"batch": map[string]any{"flush_timeout": "200ms"},
	}
	err := client.NotifyConfigSnapshot(context.Background(), snapshot(conf))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `exporter "otlp_grpc/lightstep" batches in its sending queue without partitioning by tenant: add "vault:tenant" to exporters::otlp_grpc/lightstep::sending_queue::batch::partition::metadata_keys`)
	assert.Contains(t, err.Error(), `processor "batch" in pipeline "traces" batches without the tenant: add "vault:tenant" to processors::batch::metadata_keys`)

	conf["exporters"].(map[string]any)["otlp_grpc/lightstep"].(map[string]any)["sending_queue"] = map[string]any{
		"batch": map[string]any{"partition": map[string]any{"metadata_keys": []any{"vault:tenant"}}},
	}
	conf["processors"].(map[string]any)["batch"] = map[string]any{"metadata_keys": []any{"vault:tenant"}}
	err = client.NotifyConfigSnapshot(context.Background(), snapshot(conf))
	require.Error(t, err, "no vaultidentity holds tokenless tenants at the door")
	assert.Contains(t, err.Error(), `pipeline "traces" exports through vaultauth/lightstep, which sends each tenant's own token, but no vaultidentity processor `+
		`in it holds the requests of tenants whose token is not ready: set processors::<vaultidentity>::tenant_credentials: vaultauth/lightstep`)

	conf["processors"].(map[string]any)["vaultidentity"] = map[string]any{"tenant_credentials": "vaultauth/other"}
	conf["service"].(map[string]any)["pipelines"].(map[string]any)["traces"].(map[string]any)["processors"] = []any{"vaultidentity", "batch"}
	require.Error(t, client.NotifyConfigSnapshot(context.Background(), snapshot(conf)), "it gates on another instance")
	conf["processors"].(map[string]any)["vaultidentity"] = map[string]any{"tenant_credentials": me}
	err = client.NotifyConfigSnapshot(context.Background(), snapshot(conf))
	require.Error(t, err, "the gRPC exporter cannot park: the instance is not in its middlewares")
	assert.Contains(t, err.Error(), `exporter "otlp_grpc/lightstep" sends each tenant's token through vaultauth/lightstep over gRPC but does not list it in middlewares: `+
		`add exporters::otlp_grpc/lightstep::middlewares: [{id: vaultauth/lightstep}]`)

	exp := conf["exporters"].(map[string]any)["otlp_grpc/lightstep"].(map[string]any)
	exp["middlewares"] = []any{map[string]any{"id": me}}
	exp["sending_queue"].(map[string]any)["storage"] = "file_storage/queue"
	err = client.NotifyConfigSnapshot(context.Background(), snapshot(conf))
	require.Error(t, err, "a persistent queue with a park in memory")
	assert.Contains(t, err.Error(), `exporter "otlp_grpc/lightstep" keeps its queue in file_storage/queue, but vaultauth/lightstep parks tenants' exports in memory, `+
		`where a restart would lose them: set extensions::vaultauth/lightstep::client::tenants::park::storage (e.g. to file_storage/queue)`)

	delete(exp["sending_queue"].(map[string]any), "storage")
	require.NoError(t, client.NotifyConfigSnapshot(context.Background(), snapshot(conf)))
}

// A receiver authenticated by a server instance without a vaultauth guard
// in its middlewares is decoded without bound: a warning at start says so.
func TestUnguardedReceiverWarns(t *testing.T) {
	h := startExtensionLogging(t, serverConfig("http://127.0.0.1:1", "aud"), zapcore.WarnLevel)
	me := extID.String()
	conf := pipeline(me, "vaultauth/lightstep-client", nil)
	require.NoError(t, h.ext.(extensioncapabilities.ConfigSnapshotWatcher).NotifyConfigSnapshot(context.Background(), snapshot(conf)))
	warned := h.logs.FilterMessageSnippet("has no vaultauth guard")
	require.Equal(t, 1, warned.Len())
	assert.Contains(t, warned.All()[0].ContextMap()["at"], "receivers::otlp::protocols::grpc::auth")

	grpc := conf["receivers"].(map[string]any)["otlp"].(map[string]any)["protocols"].(map[string]any)["grpc"].(map[string]any)
	grpc["middlewares"] = []any{map[string]any{"id": me}}
	require.NoError(t, h.ext.(extensioncapabilities.ConfigSnapshotWatcher).NotifyConfigSnapshot(context.Background(), snapshot(conf)))
	assert.Equal(t, 1, h.logs.FilterMessageSnippet("has no vaultauth guard").Len(), "guarded: no new warning")
}
