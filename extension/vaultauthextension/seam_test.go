package vaultauthextension

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
)

// Caching and routing, unit-tested through the seam (vaultclient.Vault)
// without a Vault process; the integration tests run the same behaviour
// against the real server.

// fakeVault answers reads and writes from functions and counts calls.
type fakeVault struct {
	mu       sync.Mutex
	calls    map[string]int
	read     func(path string) (*api.Secret, error)
	write    func(path string, data map[string]any) (*api.Secret, error)
	loggedIn chan struct{}
}

func newFakeVault() *fakeVault {
	f := &fakeVault{calls: map[string]int{}, loggedIn: make(chan struct{})}
	close(f.loggedIn)
	return f
}

func (f *fakeVault) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fakeVault) ReadWithContext(_ context.Context, path string) (*api.Secret, error) {
	f.mu.Lock()
	f.calls[path]++
	f.mu.Unlock()
	return f.read(path)
}

func (f *fakeVault) WriteWithContext(_ context.Context, path string, data map[string]any) (*api.Secret, error) {
	f.mu.Lock()
	f.calls[path]++
	f.mu.Unlock()
	return f.write(path, data)
}

func (f *fakeVault) LoggedIn() <-chan struct{} { return f.loggedIn }
func (f *fakeVault) RequestLogin()             {}

// secret builds a response as Vault's API client decodes it (numbers as json.Number).
func secret(t *testing.T, body string) *api.Secret {
	t.Helper()
	s, err := api.ParseSecret(strings.NewReader(body))
	require.NoError(t, err)
	return s
}

func vaultError(code int, msg string) error {
	return &api.ResponseError{StatusCode: code, Errors: []string{msg}}
}

// lookupServer is a token_lookup server whose verifier talks to f.
func lookupServer(t *testing.T, f *fakeVault) *serverAuth {
	t.Helper()
	cfg := withToken(createDefaultConfig(), "t")
	cfg.Vault.Address = "http://127.0.0.1:1"
	cfg.Server.GetOrInsertDefault().TokenLookup.GetOrInsertDefault()
	require.NoError(t, validate(cfg))
	link, err := newVaultLink(cfg, extensiontest.NewNopSettings(metadata.Type), serverJob)
	require.NoError(t, err)
	s := newServerAuth(link, cfg.Server.Get())
	rules, err := s.cfg.rules()
	require.NoError(t, err)
	s.verifier = newLookupVerifier(f, *s.cfg.TokenLookup.Get(), rules, nil, s.verdicts, time.Second, time.Minute)
	return s
}

const token1, token2 = "hvs.AAAAAAAAAAAAAAAAAAAAAAAA1", "hvs.AAAAAAAAAAAAAAAAAAAAAAAA2"

func TestLookupCachingWithoutVault(t *testing.T) {
	f := newFakeVault()
	var mu sync.Mutex
	lookupFails := map[string]error{}
	f.write = func(_ string, data map[string]any) (*api.Secret, error) {
		mu.Lock()
		defer mu.Unlock()
		if err := lookupFails[data["token"].(string)]; err != nil {
			return nil, err
		}
		return secret(t, `{"data":{"entity_id":"ent-1","policies":["default"],"ttl":3600}}`), nil
	}
	entityFails := true
	f.read = func(string) (*api.Secret, error) {
		mu.Lock()
		defer mu.Unlock()
		if entityFails {
			return nil, vaultError(http.StatusInternalServerError, "internal error")
		}
		return secret(t, `{"data":{"name":"payments","metadata":{}}}`), nil
	}
	s := lookupServer(t, f)
	auth := func(tok string) error {
		_, err := s.Authenticate(context.Background(), map[string][]string{"authorization": {"Bearer " + tok}})
		return err
	}

	// The entity read fails: no verdict, nothing cached, the next try asks again.
	require.ErrorIs(t, auth(token1), errVerifierUnavailable)
	require.ErrorIs(t, auth(token1), errVerifierUnavailable)
	assert.Equal(t, 2, f.count("auth/token/lookup"))
	mu.Lock()
	entityFails = false
	mu.Unlock()

	// Then: one lookup for many requests, one entity read for two tokens of the entity.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); assert.NoError(t, auth(token1)) }()
	}
	wg.Wait()
	require.NoError(t, auth(token2))
	assert.Equal(t, 4, f.count("auth/token/lookup"), "lookups: 2 failed, then 1 per token")
	assert.Equal(t, 3, f.count("identity/entity/id/ent-1"), "entity reads: 2 failed, then 1 for the entity")

	// Vault's refusal is cached; a Vault failure is not.
	mu.Lock()
	lookupFails["hvs.BBBBBBBBBBBBBBBBBBBBBBBB"] = vaultError(http.StatusForbidden, "bad token")
	lookupFails["hvs.CCCCCCCCCCCCCCCCCCCCCCCC"] = vaultError(http.StatusServiceUnavailable, "sealed")
	mu.Unlock()
	for range 3 {
		require.ErrorIs(t, auth("hvs.BBBBBBBBBBBBBBBBBBBBBBBB"), errUnauthenticated)
		require.ErrorIs(t, auth("hvs.CCCCCCCCCCCCCCCCCCCCCCCC"), errVerifierUnavailable)
	}
	assert.Equal(t, 4+1+3, f.count("auth/token/lookup"), "the refusal once, the failure each time")
}

// kv2 is a KV v2 read response holding access_token.
func kv2(t *testing.T, token string, version int) *api.Secret {
	b, _ := json.Marshal(map[string]any{"data": map[string]any{
		"data": map[string]any{"access_token": token}, "metadata": map[string]any{"version": version},
	}})
	return secret(t, string(b))
}

func TestTenantRoutingWithoutVault(t *testing.T) {
	f := newFakeVault()
	f.read = func(path string) (*api.Secret, error) {
		switch path {
		case "secret/data/teams/a":
			return kv2(t, "token-a", 1), nil
		case "secret/data/teams/shared":
			return kv2(t, "token-shared", 3), nil
		case "secret/metadata/teams/a", "secret/metadata/teams/shared":
			return secret(t, `{"data":{"current_version":1}}`), nil
		}
		return nil, nil // not there: Vault's 404
	}
	cfg := withToken(clientConfig("http://127.0.0.1:1"), "t")
	c := cfg.Client.Get()
	c.Secret.Get().Path = "secret/data/teams/{tenant}"
	c.Tenants = configoptional.Some(TenantsConfig{MaxTenants: 10, IdleTimeout: time.Hour, Default: "shared", Park: defaultParkConfig()})
	require.NoError(t, validate(cfg))
	ext, err := createExtension(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	client := ext.(*clientAuth)
	client.vault = f
	client.status = newStatusFolder(pipelinetest.NewHost(nil))
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, client.source.(*tenantSources).start(ctx, ctx, pipelinetest.NewHost(nil)))
	t.Cleanup(func() { cancel(); client.wg.Wait() })

	sent := func(tenant string) string {
		cred, err := client.source.credential(forTenant(tenant))
		if err != nil {
			return ""
		}
		return cred.values[0]
	}
	require.Eventually(t, func() bool { return sent("a") == "token-a" }, eventually, poll)
	require.Eventually(t, func() bool { return sent("b") == "token-shared" }, eventually, poll, "b has no secret: the default's")
	assert.Equal(t, 1, f.count("secret/data/teams/a"), "a's secret read once, then its version watched")
}
