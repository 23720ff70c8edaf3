package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/ratelimit"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// Tenants gives each tenant its own credential: the export's
// context names the tenant (client.Info.Metadata vault:tenant, set by the
// server side from the verified identity and carried through partitioned
// batching and the persistent queue), and that tenant's secret is watched
// from its first export on, with the same renewal, version watching and
// keep-last-good as the single secret. An export whose context names no
// tenant is refused: it could only be sent with some other tenant's token.
type Tenants struct {
	id  component.ID
	s   Settings
	env Env // set in Start

	runCtx context.Context

	mu     sync.Mutex
	byName map[string]*tenantSlot
	// snapshot is byName for the request path: a map never modified once
	// published, so lookups take no lock.
	snapshot atomic.Pointer[map[string]*tenantSlot]

	warnNoTenant ratelimit.Every
	park         *park
}

// tenantSlot is one tenant's credential and its watcher.
type tenantSlot struct {
	src      *Secret
	cancel   context.CancelFunc
	used     atomic.Bool // sent since the last idle sweep
	lastUsed int64       // unix seconds: the last sweep that found it used (under mu)
	// absent: its last read found that its secret or key does not exist
	// (never a 403, 5xx or network error: those say nothing about it).
	absent  atomic.Bool
	hasPath bool        // the tenant has a secret path at all
	park    *tenantPark // its exports, while they cannot be sent
}

var _ Source = (*Tenants)(nil)

func newTenants(id component.ID, s Settings) *Tenants {
	t := &Tenants{id: id, s: s, runCtx: context.Background(), byName: map[string]*tenantSlot{}}
	t.snapshot.Store(&map[string]*tenantSlot{})
	t.park = newPark(t, s.Tenants.Park)
	return t
}

func (t *Tenants) cfg() *TenantsSettings { return t.s.Tenants }

// Start begins the watching: the default tenant's secret at once (so the
// fallback is ready), others on demand; idle tenants are let go. Exports
// parked before a restart are taken up again.
func (t *Tenants) Start(ctx, runCtx context.Context, host component.Host, env Env) error {
	t.mu.Lock()
	t.runCtx, t.env = runCtx, env
	t.mu.Unlock()
	if err := t.openPark(ctx, runCtx, host); err != nil {
		return err
	}
	if d := t.cfg().Default; d != "" {
		if _, err := t.slot(d); err != nil {
			return err
		}
	}
	t.env.Run(func() { t.evictIdle(runCtx) })
	return nil
}

// openPark opens the park's storage and resumes the tenants parked in it.
func (t *Tenants) openPark(ctx, runCtx context.Context, host component.Host) error {
	p := t.park
	p.runCtx = runCtx
	if id := t.cfg().Park.Storage; id != nil {
		ext, ok := host.GetExtensions()[*id]
		if !ok {
			return fmt.Errorf("client::tenants::park::storage: extension %q not found: add it to service.extensions", id)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("client::tenants::park::storage: extension %q is not a storage extension", id)
		}
		c, err := se.GetClient(ctx, component.KindExtension, t.id, "park")
		if err != nil {
			return fmt.Errorf("client::tenants::park::storage: %w", err)
		}
		p.store = newParkStore(c)
	} else {
		p.memory = newMemoryStorage()
		p.store = newParkStore(p.memory)
	}
	parked, err := p.store.load(ctx)
	if err != nil {
		return fmt.Errorf("client::tenants::park: reading what was parked: %w", err)
	}
	for tenant, x := range parked {
		slot, err := t.slot(tenant)
		if err != nil {
			t.env.Logger.Error("exports parked before the restart stay parked: their tenant cannot be served now",
				zap.String("tenant", tenant), zap.Uint64("exports", x.len()), zap.Error(err))
			continue
		}
		tp := slot.park
		tp.mu.Lock()
		tp.index = x
		tp.count.Store(int64(x.len()))
		tp.bytes.Store(x.Bytes)
		tp.setParkedLocked(parkRestored)
		tp.startReplayLocked()
		tp.mu.Unlock()
	}
	return nil
}

// Close closes the park's storage; what memory still holds is lost, and said.
func (t *Tenants) Close(ctx context.Context) {
	p := t.park
	if p.store == nil {
		return
	}
	if p.memory != nil {
		if n := p.memory.exportsIn(); n > 0 {
			t.env.Logger.Error("parked exports lost at shutdown: the park is in memory (set client::tenants::park::storage to keep them)",
				zap.Int("exports", n))
		}
	}
	if err := p.store.close(ctx); err != nil {
		t.env.Logger.Warn("closing the park's storage", zap.Error(err))
	}
}

// errNoTenant is what an export without a tenant gets: permanent, since
// retrying cannot name one (a batch merged across tenants, or data that
// never passed a tenant-aware receiver).
func (t *Tenants) errNoTenant() error {
	msg := fmt.Sprintf("%s: the export names no tenant (client metadata %q), so no tenant's token may be sent with it; "+
		"batching must keep tenants apart: add %q to sending_queue::batch::partition::metadata_keys (and to the batch "+
		"processor's metadata_keys), and authenticate the receiver with a vaultauth server that has a tenant block",
		t.id, identity.TenantMetadataKey, identity.TenantMetadataKey)
	if t.warnNoTenant.Allow(refusalLogEvery) {
		t.env.Logger.Error("refused an export without a tenant", zap.String("why", msg))
	}
	return errors.New(msg)
}

// Credential is the credential of the tenant ctx names.
func (t *Tenants) Credential(ctx context.Context) (*Value, error) {
	tenant, ok := identity.TenantOf(client.FromContext(ctx))
	if !ok {
		// PermissionDenied, not restricted by gRPC and permanent for the exporter.
		return nil, permanent(status.Error(codes.PermissionDenied, t.errNoTenant().Error()))
	}
	slot, err := t.slot(tenant)
	if err != nil {
		return nil, err
	}
	if c := t.credentialOf(slot, tenant); c != nil {
		return c, nil
	}
	return nil, slot.src.errMissing
}

// credentialOf is the credential the tenant's exports carry now: its own,
// or the default tenant's when Vault says it has none; nil when neither.
func (t *Tenants) credentialOf(slot *tenantSlot, tenant string) *Value {
	if c := slot.src.current.Load(); c != nil {
		return c
	}
	// The default tenant's token stands in only for a tenant Vault says has
	// no secret: never because the gateway could not read (revoked, 403,
	// Vault down), or the default's token would leave with its data.
	if d := t.cfg().Default; d != "" && d != tenant && (slot.absent.Load() || !slot.hasPath) {
		if def, err := t.slot(d); err == nil {
			return def.src.current.Load()
		}
	}
	return nil
}

// parkOf is the park and credential of the tenant an export's context
// names; false when it names none that can be served (the credential
// lookup then refuses it).
func (t *Tenants) parkOf(ctx context.Context) (*tenantPark, *Value, bool) {
	tenant, ok := identity.TenantOf(client.FromContext(ctx))
	if !ok {
		return nil, nil, false
	}
	slot, err := t.slot(tenant)
	if err != nil {
		return nil, nil, false
	}
	return slot.park, t.credentialOf(slot, tenant), true
}

// Admit says whether a request of ctx's tenant may enter (vaultidentity
// tenant_credentials): nil, or the retryable error that holds it at its
// sender (no credential, one its backend refused, a full park), or a
// permanent one (no tenant).
func (t *Tenants) Admit(ctx context.Context) error {
	tenant, ok := identity.TenantOf(client.FromContext(ctx))
	if !ok {
		_, err := t.Credential(ctx)
		return err
	}
	slot, err := t.slot(tenant)
	if err != nil {
		return err
	}
	if slot.park.holdsDoor() {
		return status.Error(codes.Unavailable, fmt.Sprintf("%s: tenant %q is parked (%s); its senders wait",
			t.id, tenant, *slot.park.reason.Load()))
	}
	if t.credentialOf(slot, tenant) == nil {
		return slot.src.errMissing
	}
	return nil
}

// permanent marks err so that HTTP exporters drop the data too (gRPC
// exporters read the status code).
func permanent(err error) error { return consumererror.NewPermanent(err) }

// Rejected asks the tenant's watcher to re-read.
func (t *Tenants) Rejected(ctx context.Context) {
	if tenant, ok := identity.TenantOf(client.FromContext(ctx)); ok {
		if slot := (*t.snapshot.Load())[tenant]; slot != nil {
			slot.src.rejected()
		}
	}
}

// slot returns the tenant's slot, starting to watch its secret on first use.
func (t *Tenants) slot(tenant string) (*tenantSlot, error) {
	if s := (*t.snapshot.Load())[tenant]; s != nil {
		if !s.used.Load() { // one write per idle sweep, not one per export (and no clock read)
			s.used.Store(true)
		}
		return s, nil
	}
	if err := identity.ValidTenant(tenant); err != nil {
		return nil, permanent(status.Error(codes.PermissionDenied, err.Error()))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.byName[tenant]; s != nil {
		return s, nil
	}
	if len(t.byName) >= t.cfg().MaxTenants {
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("%s: tenant %q would be one more than max_tenants (%d)", t.id, tenant, t.cfg().MaxTenants))
	}
	s := &tenantSlot{src: newSecret(t.s, tenant, t.env.Telemetry, nil)}
	s.park = newTenantPark(t.park, tenant, s)
	s.used.Store(true)
	s.lastUsed = time.Now().Unix()
	secret, hasPath := t.s.tenantSecret(tenant)
	s.hasPath = hasPath
	s.src.errMissing = status.Error(codes.Unavailable, fmt.Sprintf("%s: no credential for tenant %q yet (%s)", t.id, tenant, secret.Path))
	if hasPath {
		t.watch(s, tenant, secret)
	} else {
		s.absent.Store(true)
	}
	t.byName[tenant] = s
	t.publishLocked()
	return s, nil
}

// watch starts watching the tenant's secret, on its own context.
func (t *Tenants) watch(s *tenantSlot, tenant string, secret vaultclient.SecretConfig) {
	ctx, cancel := context.WithCancel(t.runCtx)
	s.cancel = cancel
	statusKey := tenantStatusKey(tenant)
	report := func(_ string, err error) {
		missing := err != nil && vaultclient.IsMissing(err)
		s.absent.Store(err != nil && vaultclient.IsAbsent(err))
		if err != nil {
			t.env.Telemetry.Failed("secret read", tenant)
		}
		if missing {
			// One tenant without a token it may read (not written yet, or
			// outside the gateway's policy) is that tenant's wait, not the
			// gateway's fault: the health status gates readiness for every
			// tenant, so one team's missing token must not take the others
			// down. The failure count, the tenant's credential_available
			// gauge and the watcher's warning say it.
			err = nil
		}
		t.env.Status.Report(statusKey, err)
		if missing {
			t.reportNoneReady()
		}
	}
	// A success is reported before its value is set: the check for "no
	// tenant ready" runs once the value is in.
	set := func(v vaultclient.Value) { s.src.set(v); t.reportNoneReady(); s.park.nudge() }
	w := vaultclient.NewSecretWatcher(t.env.Vault, t.env.Retry, secret, t.s.RefreshInterval,
		t.env.Logger.With(zap.String("tenant", tenant)), report, set)
	s.src.watcher = w
	s.src.audited(t.env, secret.Path)
	t.emitTenant(auditevent.TenantOpened, tenant, "first_seen")
	t.env.Run(func() { w.Run(ctx) })
}

func (t *Tenants) publishLocked() {
	next := make(map[string]*tenantSlot, len(t.byName))
	for k, v := range t.byName {
		next[k] = v
	}
	t.snapshot.Store(&next)
}

// reportNoneReady makes the status an error while no watched tenant has a
// credential: then the gateway sends nothing at all (a policy that reads no
// tenant's path, a template that names none), which is the gateway's fault,
// not one tenant's wait.
func (t *Tenants) reportNoneReady() {
	slots := *t.snapshot.Load()
	for _, s := range slots {
		if s.src.current.Load() != nil {
			t.env.Status.Report(statusNoneReady, nil)
			return
		}
	}
	if len(slots) == 0 {
		t.env.Status.Report(statusNoneReady, nil)
	} else {
		t.env.Status.Report(statusNoneReady, fmt.Errorf("%s: none of the %d tenants seen has a credential: check the secret path template and the gateway's policy", t.id, len(slots)))
	}
}

const statusNoneReady = "tenants"

// tenantStatusKey is the activity a tenant's secret reads fold into the status as.
func tenantStatusKey(tenant string) string { return "secret read (tenant " + tenant + ")" }

// evictIdle stops watching tenants that sent nothing for idle_timeout.
func (t *Tenants) evictIdle(ctx context.Context) {
	every := min(t.cfg().IdleTimeout/2, time.Minute)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		cutoff := now.Add(-t.cfg().IdleTimeout).Unix()
		t.mu.Lock()
		for name, s := range t.byName {
			if s.used.Swap(false) {
				s.lastUsed = now.Unix()
				continue
			}
			if s.lastUsed < cutoff && name != t.cfg().Default && s.park.count.Load() == 0 && !s.park.parked.Load() {
				if s.cancel != nil {
					s.cancel()
				}
				delete(t.byName, name)
				t.env.Status.Report(tenantStatusKey(name), nil) // it no longer counts against the status
				t.env.Logger.Info("stopped watching an idle tenant's secret", zap.String("tenant", name))
				t.emitTenant(auditevent.TenantClosed, name, "idle")
			}
		}
		t.publishLocked()
		t.mu.Unlock()
		t.reportNoneReady()
	}
}

// emitTenant tells the audit events a tenant was opened or closed, and why.
func (t *Tenants) emitTenant(name, tenant, reason string) {
	if t.env.Events == nil {
		return
	}
	t.env.Events.Emit(auditevent.Event{Name: name, Attrs: []auditevent.Attr{
		auditevent.String(auditevent.Component, t.env.Component),
		auditevent.String("vault.tenant", tenant),
		auditevent.String(auditevent.TenantReason, reason),
	}})
}

// each runs f for each tenant's secret.
func (t *Tenants) each(f func(*Secret)) {
	for _, s := range *t.snapshot.Load() {
		f(s.src)
	}
}

// registerParkGauges reports what each tenant has parked.
func (t *Tenants) registerParkGauges() error {
	each := func(f func(*tenantSlot)) {
		for _, s := range *t.snapshot.Load() {
			f(s)
		}
	}
	if err := t.env.Telemetry.RegisterVaultauthParkExportsCallback(func(_ context.Context, o metric.Int64Observer) error {
		each(func(s *tenantSlot) { o.Observe(s.park.count.Load(), metric.WithAttributeSet(s.park.attrs)) })
		return nil
	}); err != nil {
		return err
	}
	return t.env.Telemetry.RegisterVaultauthParkBytesCallback(func(_ context.Context, o metric.Int64Observer) error {
		each(func(s *tenantSlot) { o.Observe(s.park.bytes.Load(), metric.WithAttributeSet(s.park.attrs)) })
		return nil
	})
}
