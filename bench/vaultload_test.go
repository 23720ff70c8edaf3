package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

const (
	loadGoroutines = 64
	loadPerG       = 10000
	distinctTokens = 1000
)

// TestVaultLoad measures what token_lookup mode costs Vault: 64 goroutines x
// 10,000 requests over 1,000 distinct tokens, against the real dev Vault
// behind a counting proxy. Run by `make bench` (with -run), not by `make test`.
func TestVaultLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a load measurement")
	}
	v := vaulttest.Start(t)
	v.PutPolicy(t, "gateway", `
path "auth/token/lookup"    { capabilities = ["update"] }
path "identity/entity/id/*" { capabilities = ["read"] }`)
	v.PutPolicy(t, "minter", `path "auth/token/create" { capabilities = ["create", "update"] }`)
	roleID, secretID := v.AppRole(t, "gateway", map[string]any{"token_policies": "gateway"})
	w := v.UserpassWorkload(t, "payments", "minter")
	// Child tokens inherit the workload's entity: 1,000 distinct senders of one identity.
	minter := v.ClientWithToken(t, w.Token)
	tokens := make([]string, distinctTokens)
	for i := range tokens {
		sec, err := minter.Logical().Write("auth/token/create", map[string]any{"policies": []string{"default"}, "ttl": "1h"})
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = sec.Auth.ClientToken
	}
	garbage := make([]string, distinctTokens)
	for i := range garbage {
		garbage[i] = fmt.Sprintf("hvs.CAESIGarbage%024d", i)
	}
	vault := vaulttest.NewCountingProxy(t, v)

	f := vaultauthextension.NewFactory()
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{
		"vault": map[string]any{"address": vault.Addr},
		"auth":  map[string]any{"method": "approle", "role_id": roleID, "secret_id": secretID},
		// The lookup rate limit is raised so the measurement shows the caching
		// and sharing of lookups; with the default (100/s), a cold start of
		// 1,000 new senders is admitted over ~10s, its refusals retryable
		// (see TestGarbageFlood for the limit itself).
		"server": map[string]any{"token_lookup": map[string]any{"max_lookups_per_second": 100000}},
	}).Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = component.NewID(f.Type())
	ext, err := f.Create(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ext.Shutdown(context.Background()) }()
	auth := ext.(extensionauth.Server)
	// Wait for the gateway's own login.
	for i := 0; ; i++ {
		if _, err := auth.Authenticate(context.Background(), map[string][]string{"authorization": {tokens[0]}}); err == nil {
			break
		} else if i > 500 {
			t.Fatalf("gateway never authenticated a valid token: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	run := func(name string, creds []string, wantOK bool) {
		var heapBefore runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&heapBefore)
		before := vault.Count("auth/token/lookup")
		var ok, refused, unavailable atomic.Int64
		var heapPeak atomic.Uint64
		start := time.Now()
		var wg sync.WaitGroup
		for g := range loadGoroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range loadPerG {
					h := map[string][]string{"authorization": {"Bearer " + creds[(g*7919+i)%len(creds)]}}
					_, err := auth.Authenticate(context.Background(), h)
					switch {
					case err == nil:
						ok.Add(1)
					case status.Code(err) == codes.Unavailable:
						unavailable.Add(1)
					default:
						refused.Add(1)
					}
					if i%1000 == 0 {
						var m runtime.MemStats
						runtime.ReadMemStats(&m)
						for p := heapPeak.Load(); m.HeapInuse > p && !heapPeak.CompareAndSwap(p, m.HeapInuse); p = heapPeak.Load() {
						}
					}
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		lookups := vault.Count("auth/token/lookup") - before
		total := loadGoroutines * loadPerG
		var heapAfter runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&heapAfter)
		t.Logf("%s: heap retained after GC %.0f bytes per distinct credential (its cached verdict and identity)",
			name, float64(int64(heapAfter.HeapInuse)-int64(heapBefore.HeapInuse))/float64(len(creds)))
		t.Logf("%s: %d requests over %d distinct credentials in %s (%.0f req/s): %d accepted, %d refused, %d unavailable; "+
			"Vault lookups: %d; peak heap in use %.1f MiB",
			name, total, len(creds), took.Round(time.Millisecond), float64(total)/took.Seconds(),
			ok.Load(), refused.Load(), unavailable.Load(), lookups, float64(heapPeak.Load())/(1<<20))
		if lookups > len(creds) {
			t.Errorf("%s: %d Vault lookups for %d distinct credentials", name, lookups, len(creds))
		}
		if wantOK && ok.Load() == 0 || !wantOK && ok.Load() != 0 {
			t.Errorf("%s: %d accepted", name, ok.Load())
		}
	}
	run("valid tokens", tokens, true)
	run("garbage tokens", garbage, false)
}
