package vaultclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// These tests inject faults the real dev server cannot produce (500s,
// malformed bodies, a lease that cannot be renewed); the behaviour against
// the real server is covered in the extension's tests.

// faultyVault answers lookup-self for any token and serves the secret path
// with whatever the test sets.
type faultyVault struct {
	status atomic.Int32
	body   atomic.Value // string
	reads  atomic.Int64
}

func (f *faultyVault) serve(t *testing.T) string {
	f.status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/auth/token/lookup-self" {
			_, _ = w.Write([]byte(`{"data":{"ttl":0,"renewable":false}}`))
			return
		}
		f.reads.Add(1)
		w.WriteHeader(int(f.status.Load()))
		_, _ = w.Write([]byte(f.body.Load().(string)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type values struct {
	mu  sync.Mutex
	all []Value
}

func (v *values) add(x Value) { v.mu.Lock(); v.all = append(v.all, x); v.mu.Unlock() }
func (v *values) last() (Value, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.all) == 0 {
		return Value{}, 0
	}
	return v.all[len(v.all)-1], len(v.all)
}

func runWatcher(t *testing.T, addr string, interval time.Duration) (*values, *observer.ObservedLogs) {
	return runWatcherFor(t, addr, SecretConfig{Path: "kv/lightstep", Key: "token"}, interval)
}

func runWatcherFor(t *testing.T, addr string, secret SecretConfig, interval time.Duration) (*values, *observer.ObservedLogs) {
	cfg := DefaultVaultConfig()
	cfg.Address = addr
	cfg.Retry = RetryConfig{InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond}
	client, err := NewClient(context.Background(), cfg)
	require.NoError(t, err)
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	auth := DefaultAuthConfig()
	auth.Token = "t"
	session := NewSession(client, auth, cfg, logger, nil)
	got := &values{}
	w := NewSecretWatcher(session, cfg.Retry, secret, interval, logger, nil, got.add)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); session.Run(ctx) }()
	go func() { defer wg.Done(); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return got, logs
}

func TestServerErrorsAndMalformedBodiesKeepLastGood(t *testing.T) {
	f := &faultyVault{}
	f.body.Store(`{"data":{"token":"good-value"}}`)
	got, logs := runWatcher(t, f.serve(t), 10*time.Millisecond)
	require.Eventually(t, func() bool { v, _ := got.last(); return v.Data == "good-value" }, 5*time.Second, time.Millisecond)

	for _, fault := range []struct {
		status int
		body   string
	}{
		{http.StatusInternalServerError, `{"errors":["internal error"]}`},
		{http.StatusOK, `{"data":{"token":`},        // truncated JSON
		{http.StatusOK, `<html>proxy error</html>`}, // not JSON at all
		{http.StatusOK, `{"data":{"token":42}}`},    // wrong type
		{http.StatusOK, `{"data":{}}`},              // key missing
	} {
		f.status.Store(int32(fault.status))
		f.body.Store(fault.body)
		before := f.reads.Load()
		require.Eventually(t, func() bool { return f.reads.Load() > before+3 }, 5*time.Second, time.Millisecond)
		v, n := got.last()
		require.Equal(t, "good-value", v.Data, "fault %d %q replaced the last good value", fault.status, fault.body)
		require.Equal(t, 1, n, "fault %d %q changed the value", fault.status, fault.body)
	}
	// Many failed retries, one warning per distinct error, not one per retry.
	warnings := logs.FilterLevelExact(zapcore.WarnLevel).Len()
	require.LessOrEqual(t, warnings, 5)
	require.Less(t, int64(warnings), f.reads.Load()/2)

	f.status.Store(http.StatusOK)
	f.body.Store(`{"data":{"token":"new-value"}}`)
	require.Eventually(t, func() bool { v, _ := got.last(); return v.Data == "new-value" }, 5*time.Second, time.Millisecond)
	require.Equal(t, 1, logs.FilterMessage("Vault secret read recovered").Len())
}

// A leased secret that cannot be read again is dropped when its lease ends:
// sending a credential the backend no longer honours helps nobody.
func TestLeasedValueDroppedAtLeaseEnd(t *testing.T) {
	f := &faultyVault{}
	f.body.Store(`{"lease_id":"kv/lightstep/abc","lease_duration":1,"renewable":true,"data":{"token":"leased-value"}}`)
	got, _ := runWatcher(t, f.serve(t), time.Hour)
	require.Eventually(t, func() bool { v, _ := got.last(); return v.Data == "leased-value" }, 5*time.Second, time.Millisecond)
	v, _ := got.last()
	require.False(t, v.Expires.IsZero(), "a leased value must carry its lease end")

	f.status.Store(http.StatusInternalServerError)
	f.body.Store(`{"errors":["down"]}`)
	require.Eventually(t, func() bool { v, n := got.last(); return n == 2 && v.Data == "" }, 5*time.Second, time.Millisecond)
	require.False(t, time.Now().Before(v.Expires), "dropped before the lease ended")
}

// A value with a lifetime (an identity token: each read makes a new one) is
// read again at two thirds of it, not every interval.
func TestValueWithLifetimeNotPolled(t *testing.T) {
	f := &faultyVault{}
	f.body.Store(`{"data":{"token":"eyJ.identity.token","ttl":3600}}`)
	got, _ := runWatcherFor(t, f.serve(t), SecretConfig{Path: "identity/oidc/token/otel-agent", Key: "token", TTLField: "ttl"}, time.Millisecond)
	require.Eventually(t, func() bool { v, _ := got.last(); return v.Data != "" }, 5*time.Second, time.Millisecond)
	v, _ := got.last()
	require.WithinDuration(t, time.Now().Add(time.Hour), v.Expires, time.Minute)
	// With a 1ms interval, polling would read about 200 times in this window.
	require.Never(t, func() bool { return f.reads.Load() > 1 }, 200*time.Millisecond, 5*time.Millisecond)
}
