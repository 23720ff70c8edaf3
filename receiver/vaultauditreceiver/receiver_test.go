package vaultauditreceiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/receiver/vaultauditreceiver/internal/metadata"
)

func TestConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	load := func(name string) (*Config, error) {
		sub, err := cm.Sub(component.MustNewIDWithName(metadata.Type.String(), name).String())
		require.NoError(t, err)
		cfg := createDefaultConfig().(*Config)
		require.NoError(t, sub.Unmarshal(cfg))
		return cfg, confmap.Validate(cfg)
	}
	cfg, err := load("")
	require.NoError(t, err)
	assert.Equal(t, []component.ID{component.MustNewIDWithName("vaultauth", "agents"), component.MustNewIDWithName("vaultauth", "lightstep")}, cfg.Extensions)
	assert.Equal(t, 1000, cfg.QueueSize)
	cfg, err = load("queue")
	require.NoError(t, err)
	assert.Equal(t, 50, cfg.QueueSize)
	_, err = load("none")
	assert.ErrorContains(t, err, "extensions: at least one")
}

// host offers extensions by id.
type host struct {
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

// busExtension is an extension with an audit bus, as vaultauth has.
type busExtension struct {
	component.StartFunc
	component.ShutdownFunc
	bus auditevent.Bus
}

func (b *busExtension) SubscribeAuditEvents(f func(auditevent.Event)) func() {
	return b.bus.Subscribe(f)
}

func start(t *testing.T, cfg *Config, exts map[component.ID]component.Component, sink *consumertest.LogsSink) *auditReceiver {
	t.Helper()
	r, err := newAuditReceiver(cfg, receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host{exts}))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

func TestEventsBecomeLogRecords(t *testing.T) {
	id := component.MustNewIDWithName("vaultauth", "agents")
	ext := &busExtension{}
	sink := &consumertest.LogsSink{}
	start(t, &Config{Extensions: []component.ID{id}, QueueSize: 10}, map[component.ID]component.Component{id: ext}, sink)

	ext.bus.Emit(auditevent.Event{Name: auditevent.CredentialAccepted, Attrs: []auditevent.Attr{
		auditevent.String("vault.entity.id", "e-1"), auditevent.String("vault.credential.hmac", "hmac-sha256:ab"),
	}})
	ext.bus.Emit(auditevent.Event{Name: auditevent.CredentialRefused, Warn: true, Attrs: []auditevent.Attr{
		auditevent.String(auditevent.RefusalReason, "bad_signature"), auditevent.Int(auditevent.RefusalCount, 7),
	}})
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 2 }, 5*time.Second, 5*time.Millisecond)

	var records []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		sl := ld.ResourceLogs().At(0).ScopeLogs().At(0)
		assert.Equal(t, scopeName, sl.Scope().Name())
		for i := 0; i < sl.LogRecords().Len(); i++ {
			records = append(records, sl.LogRecords().At(i))
		}
	}
	require.Len(t, records, 2)
	assert.Equal(t, auditevent.CredentialAccepted, records[0].EventName())
	assert.Equal(t, plog.SeverityNumberInfo, records[0].SeverityNumber())
	assert.Equal(t, 2, records[0].Attributes().Len())
	h, _ := records[0].Attributes().Get("vault.credential.hmac")
	assert.Equal(t, "hmac-sha256:ab", h.Str())
	assert.Equal(t, plog.SeverityNumberWarn, records[1].SeverityNumber())
	n, _ := records[1].Attributes().Get(auditevent.RefusalCount)
	assert.Equal(t, int64(7), n.Int())
	assert.NotZero(t, records[1].Timestamp())
}

func TestStartNamesAMissingOrWrongExtension(t *testing.T) {
	id := component.MustNewIDWithName("vaultauth", "agents")
	other := component.MustNewID("zpages")
	for _, tc := range []struct {
		exts map[component.ID]component.Component
		want string
	}{
		{nil, "extensions: vaultauth/agents is not an extension of this collector"},
		{map[component.ID]component.Component{id: struct{ component.Component }{}}, "extensions: vaultauth/agents is not a vaultauth extension"},
		{map[component.ID]component.Component{other: &busExtension{}}, "vaultauth/agents is not an extension"},
	} {
		r, err := newAuditReceiver(&Config{Extensions: []component.ID{id}, QueueSize: 1}, receivertest.NewNopSettings(metadata.Type), consumertest.NewNop())
		require.NoError(t, err)
		assert.ErrorContains(t, r.Start(context.Background(), host{tc.exts}), tc.want)
		require.NoError(t, r.Shutdown(context.Background()))
	}
}

// A pipeline that does not keep up never blocks the extension: events
// beyond queue_size are dropped, and the rest arrive after it recovers.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	id := component.MustNewID("vaultauth")
	ext := &busExtension{}
	release := make(chan struct{})
	sink := &consumertest.LogsSink{}
	blocking := blockingLogs{sink: sink, release: release}
	r, err := newAuditReceiver(&Config{Extensions: []component.ID{id}, QueueSize: 5}, receivertest.NewNopSettings(metadata.Type), blocking)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host{map[component.ID]component.Component{id: ext}}))

	done := make(chan struct{})
	go func() {
		for range 1000 {
			ext.bus.Emit(auditevent.Event{Name: auditevent.Login})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("emitting blocked on a stalled pipeline")
	}
	close(release)
	require.NoError(t, r.Shutdown(context.Background()))
	// At most the queue and the batch the pipeline held arrive.
	assert.LessOrEqual(t, sink.LogRecordCount(), 5+maxBatch)
	assert.Positive(t, sink.LogRecordCount())
}

type blockingLogs struct {
	*consumertest.LogsSink
	sink    *consumertest.LogsSink
	release chan struct{}
}

func (b blockingLogs) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	<-b.release
	return b.sink.ConsumeLogs(ctx, ld)
}
