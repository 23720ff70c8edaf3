package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// keyServer serves a JWKS of the key ids it is told, counting fetches, and
// failing while down. (A stand-in for Vault's keys endpoint, to drive the
// fetch and refetch logic; the extension's tests run it against Vault.)
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	kids    []string
	down    bool
	fetches atomic.Int64
}

func newKeyServer(t *testing.T, kids ...string) *keyServer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k := &keyServer{kids: kids}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		k.fetches.Add(1)
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.down {
			http.Error(w, "sealed", http.StatusServiceUnavailable)
			return
		}
		var set jose.JSONWebKeySet
		for _, kid := range k.kids {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(k.Close)
	return k
}

func (k *keyServer) set(down bool, kids ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.down, k.kids = down, kids
}

// runKeys runs a key set fetcher against k until the test ends.
func runKeys(t *testing.T, k *keyServer, refetch time.Duration) *jwks {
	j := newJWKS(k.URL, k.Client(), JWTSettings{RefetchInterval: refetch, RefreshInterval: time.Hour}, time.Second,
		vaultclient.RetryConfig{InitialInterval: 20 * time.Millisecond, MaxInterval: 50 * time.Millisecond}, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); j.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return j.keys.Load() != nil }, 5*time.Second, 5*time.Millisecond, "first fetch")
	return j
}

// The fetch and refetch logic, without Vault: a known key costs no fetch;
// a key rotated in is found by the next allowed fetch; one the issuer does
// not publish is retried (Unavailable) until a fetch begun after it was
// asked for, then refused without fetching again; many requests for
// unknown keys cause at most one fetch per refetch interval.
func TestJWKSRefetch(t *testing.T) {
	const refetch = 200 * time.Millisecond
	k := newKeyServer(t, "k1")
	j := runKeys(t, k, refetch)
	base := k.fetches.Load()
	for range 100 {
		_, err := j.key(context.Background(), "k1")
		require.NoError(t, err)
	}
	assert.Equal(t, base, k.fetches.Load(), "a known key fetched nothing")

	k.set(false, "k1", "k2") // Vault rotated k2 in
	start := time.Now()
	var err error
	require.Eventually(t, func() bool { _, err = j.key(context.Background(), "k2"); return err == nil }, 5*time.Second, 5*time.Millisecond)
	assert.Less(t, time.Since(start), refetch+500*time.Millisecond, "found within a refetch interval")

	start = time.Now()
	outcomes := map[string]int{}
	for time.Since(start) < 3*refetch {
		_, err = j.key(context.Background(), "other-vault")
		switch {
		case errors.Is(err, errUnknownKey):
			outcomes["refused"]++
		case errors.Is(err, errKeysUnavailable):
			outcomes["unavailable"]++
		}
		time.Sleep(time.Millisecond)
	}
	assert.Positive(t, outcomes["refused"], "never refused: %v", outcomes)
	fetches := k.fetches.Load() - base
	assert.LessOrEqual(t, fetches, int64(5), "fetches for %d requests for unknown keys", outcomes["refused"]+outcomes["unavailable"])
	t.Logf("unknown key: %v over %s; %d fetches in all (refetch interval %s)", outcomes, 3*refetch, fetches, refetch)
}

// A failed fetch is retried on its own backoff, and requests meanwhile are
// told to retry, not refused: a failed fetch proves nothing of a key.
func TestJWKSFetchFailure(t *testing.T) {
	const refetch = 100 * time.Millisecond
	k := newKeyServer(t, "k1")
	j := runKeys(t, k, refetch)
	k.set(true)
	time.Sleep(refetch) // a fetch is allowed again
	for range 50 {
		_, err := j.key(context.Background(), "k2")
		require.ErrorIs(t, err, errKeysUnavailable, "refused while the keys could not be fetched")
		time.Sleep(5 * time.Millisecond)
	}
	k.set(false, "k1", "k2")
	require.Eventually(t, func() bool { _, err := j.key(context.Background(), "k2"); return err == nil }, 5*time.Second, 5*time.Millisecond,
		"the failed fetch was not retried")
}
