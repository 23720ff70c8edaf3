package vaultauthextension

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// A flood of distinct garbage credentials, 10,000 a second for 10 seconds,
// against a token_lookup gateway: Vault sees a bounded number of lookups
// (max_lookups_per_second), the caches stay within cache_size, and a valid
// sender is served all along.
func TestGarbageFlood(t *testing.T) {
	const (
		rate      = 10000 // credentials per second
		duration  = 10 * time.Second
		cacheSize = 2000
	)
	e := newIdentityEnv(t)
	vault := vaulttest.NewCountingProxy(t, e.v)
	e.v.PutPolicy(t, "otel-gateway", gatewayPolicy)
	roleID, secretID := e.v.AppRole(t, "otel-gateway", map[string]any{"token_policies": "otel-gateway"})
	cfg := createDefaultConfig()
	cfg.Vault.Address = vault.Addr
	withAppRole(cfg, roleID, secretID)
	srv := cfg.Server.GetOrInsertDefault()
	srv.TokenLookup.GetOrInsertDefault()
	srv.CacheSize = cacheSize
	// Info level: capturing 100,000 debug lines in memory would be most of the heap measured.
	h := startExtensionLogging(t, cfg, zapcore.InfoLevel)
	require.Eventually(t, func() bool { _, err := authenticate(h, "Bearer "+e.alice.Token); return err == nil }, eventually, poll)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	lookupsBefore := vault.Count("auth/token/lookup")
	start := time.Now()
	sent, validOK, validFailed := 0, 0, 0
	var peakHeap uint64
	for tick := 0; time.Since(start) < duration; tick++ {
		// One millisecond's worth: 10 garbage credentials, 1 valid request.
		for range rate / 1000 {
			_, err := authenticate(h, fmt.Sprintf("Bearer hvs.CAESIFlood%012d%012d", tick, sent))
			require.Error(t, err)
			sent++
		}
		if _, err := authenticate(h, "Bearer "+e.alice.Token); err == nil {
			validOK++
		} else {
			validFailed++
		}
		if tick%1000 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peakHeap = max(peakHeap, m.HeapInuse)
		}
		if ahead := time.Until(start.Add(time.Duration(tick+1) * time.Millisecond)); ahead > 0 {
			time.Sleep(ahead) // pace the flood at 10,000 a second
		}
	}
	took := time.Since(start)
	lookups := vault.Count("auth/token/lookup") - lookupsBefore
	budget := int(math.Ceil(took.Seconds()*srv.TokenLookup.Get().MaxLookupsPerSecond)) + srv.TokenLookup.Get().MaxConcurrentLookups
	accepted, _ := h.sumWhere(t, "otelcol_vaultauth_server_cached_credentials", "outcome=accepted")
	refused, _ := h.sumWhere(t, "otelcol_vaultauth_server_cached_credentials", "outcome=refused")
	t.Logf("flood: %d distinct garbage credentials in %s (%.0f/s); Vault lookups %d (budget %d); valid sender %d served, %d refused; "+
		"cache entries %d accepted, %d refused (cache_size %d); heap in use %.1f MiB before, %.1f MiB peak",
		sent, took.Round(time.Millisecond), float64(sent)/took.Seconds(), lookups, budget, validOK, validFailed,
		accepted, refused, cacheSize, float64(before.HeapInuse)/(1<<20), float64(peakHeap)/(1<<20))
	assert.LessOrEqual(t, lookups, budget, "Vault lookups beyond max_lookups_per_second")
	assert.Zero(t, validFailed, "the valid sender was refused during the flood")
	assert.Positive(t, accepted, "the cache gauge reports the valid sender")
	assert.LessOrEqual(t, accepted, int64(cacheSize+16)) // at most one entry over per shard (16)
	assert.LessOrEqual(t, refused, int64(cacheSize+16))  // at most one entry over per shard (16)
	assert.Less(t, peakHeap, before.HeapInuse+64<<20, "memory grew with the flood")
}
