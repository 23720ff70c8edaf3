package vaultclient

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The secret watcher's status reporting through the seam (Vault), without
// a Vault process: failures are reported on every try and logged once per
// change of state; the last good value stays while reads fail.

type fakeVault struct {
	failing atomic.Bool
	reads   atomic.Int64
}

func (f *fakeVault) ReadWithContext(context.Context, string) (*api.Secret, error) {
	f.reads.Add(1)
	if f.failing.Load() {
		return nil, errors.New("connection refused")
	}
	return api.ParseSecret(strings.NewReader(`{"data":{"token":"value"}}`))
}

func (f *fakeVault) WriteWithContext(context.Context, string, map[string]any) (*api.Secret, error) {
	return nil, errors.New("not used")
}

func (f *fakeVault) LoggedIn() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (f *fakeVault) RequestLogin() {}

type reports struct {
	mu  sync.Mutex
	all []error
}

func (r *reports) report(_ string, err error) { r.mu.Lock(); r.all = append(r.all, err); r.mu.Unlock() }
func (r *reports) snapshot() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.all...)
}

func TestWatcherStatusWithoutVault(t *testing.T) {
	f := &fakeVault{}
	f.failing.Store(true)
	core, logs := observer.New(zapcore.DebugLevel)
	rep := &reports{}
	got := &values{}
	w := NewSecretWatcher(f, RetryConfig{InitialInterval: 5 * time.Millisecond, MaxInterval: 10 * time.Millisecond},
		SecretConfig{Path: "kv/x", Key: "token"}, 10*time.Millisecond, zap.New(core), rep.report, got.add)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	require.Eventually(t, func() bool { return len(rep.snapshot()) >= 5 }, 5*time.Second, time.Millisecond)
	_, n := got.last()
	assert.Zero(t, n, "no value while every read fails")
	f.failing.Store(false)
	require.Eventually(t, func() bool { v, _ := got.last(); return v.Data == "value" }, 5*time.Second, time.Millisecond)
	f.failing.Store(true)
	require.Eventually(t, func() bool { all := rep.snapshot(); return all[len(all)-1] != nil }, 5*time.Second, time.Millisecond)
	v, _ := got.last()
	assert.Equal(t, "value", v.Data, "the last good value stays")

	assert.Equal(t, 2, logs.FilterLevelExact(zapcore.WarnLevel).Len(), "one warning per failing spell, not per try")
	assert.Equal(t, 1, logs.FilterMessage("Vault secret read recovered").Len())
	errs, oks := 0, 0
	for _, e := range rep.snapshot() {
		if e != nil {
			errs++
		} else {
			oks++
		}
	}
	assert.GreaterOrEqual(t, errs, 6, "every failed try is reported (the status keeps its cause current)")
	assert.Positive(t, oks)
}
