// Package auditevent is what the vaultauth extension tells an auditor: the
// events it emits (a sender's credential first accepted, refusals, the
// export credential changing, logins, tenants opened and closed) and how a
// consumer (the vaultaudit receiver) subscribes to them. Events never hold
// a secret: credentials appear only as Vault audit HMACs.
package auditevent

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event names (the log record's event name). Attribute keys are those of
// the identity (vault.entity.id, vault.credential.hmac, ...) and the keys
// below.
const (
	CredentialAccepted      = "vault.credential.accepted"
	CredentialRefused       = "vault.credential.refused"
	ExportCredentialChanged = "vault.export_credential.changed"
	Login                   = "vault.login"
	TenantOpened            = "vault.tenant.opened"
	TenantClosed            = "vault.tenant.closed"
)

// Attribute keys beyond the identity's.
const (
	Component        = "vault.component"          // the emitting vaultauth instance, e.g. vaultauth/agents
	CredentialKind   = "vault.credential.kind"    // identity_token or token
	CredentialExpiry = "vault.credential.expires" // RFC 3339
	TokenIssuer      = "vault.token.issuer"
	TokenKeyID       = "vault.token.key_id"
	RefusalOutcome   = "vault.refusal.outcome" // refused (Unauthenticated) or unavailable (retry)
	RefusalReason    = "vault.refusal.reason"
	RefusalCount     = "vault.refusal.count"
	IntervalStart    = "vault.refusal.interval_start" // RFC 3339
	ClientAddress    = "client.address"               // OTel semantic convention
	SecretPath       = "vault.secret.path"
	SecretVersion    = "vault.secret.version"
	SecretCreated    = "vault.secret.created_time"
	RotatedBy        = "vault.rotation.entity_id"
	RotationReason   = "vault.rotation.reason"
	RequestID        = "vault.request.id"
	AuthMethod       = "vault.auth.method"
	LoginKind        = "vault.login.kind" // first or again
	TokenTTL         = "vault.token.ttl_seconds"
	TenantReason     = "vault.tenant.reason"
)

// Attr is one attribute: a string, or an integer when IsInt.
type Attr struct {
	Key   string
	Str   string
	Int   int64
	IsInt bool
}

// String is a string attribute; Int an integer one.
func String(k, v string) Attr    { return Attr{Key: k, Str: v} }
func Int(k string, v int64) Attr { return Attr{Key: k, Int: v, IsInt: true} }

// Event is one audit event.
type Event struct {
	Name  string
	Time  time.Time
	Warn  bool // a refusal: severity WARN rather than INFO
	Attrs []Attr
}

// Source is implemented by the vaultauth extension. f is called from the
// extension's goroutines and must not block; unsubscribe stops the calls.
type Source interface {
	SubscribeAuditEvents(f func(Event)) (unsubscribe func())
}

// Bus fans events out to subscribers. Emit without subscribers is one
// atomic load, so emitters need not ask first (Active, when building the
// event costs something).
//
// Extensions start before receivers: the first events (the first login)
// happen before a vaultaudit receiver subscribes. Until the first
// subscription, the bus keeps up to maxBacklog events for it.
type Bus struct {
	mu         sync.Mutex
	next       int
	backlog    []Event     // events before the first subscription
	backlogEnd atomic.Bool // someone subscribed, or the backlog is full
	subs       atomic.Pointer[map[int]func(Event)]
}

// maxBacklog bounds the events kept for the first subscriber.
const maxBacklog = 64

// Active says whether an event emitted now reaches anyone.
func (b *Bus) Active() bool {
	m := b.subs.Load()
	return (m != nil && len(*m) > 0) || !b.backlogEnd.Load()
}

// Emit hands e to every subscriber, stamped with now if it has no time.
func (b *Bus) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	m := b.subs.Load()
	if m == nil || len(*m) == 0 {
		b.keep(e)
		return
	}
	for _, f := range *m {
		f(e)
	}
}

// keep adds e to the backlog, before the first subscription.
func (b *Bus) keep(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.backlogEnd.Load() {
		return
	}
	b.backlog = append(b.backlog, e)
	if len(b.backlog) >= maxBacklog {
		b.backlogEnd.Store(true)
	}
}

// Subscribe adds f (Source). The first subscriber first gets the events
// emitted before it.
func (b *Bus) Subscribe(f func(Event)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.backlog != nil || !b.backlogEnd.Load() {
		b.backlogEnd.Store(true)
		for _, e := range b.backlog {
			f(e)
		}
		b.backlog = nil
	}
	id := b.next
	b.next++
	b.swap(func(m map[int]func(Event)) { m[id] = f })
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.swap(func(m map[int]func(Event)) { delete(m, id) })
	}
}

// swap replaces the subscriber map with an edited copy (b.mu held), so
// Emit reads it without a lock.
func (b *Bus) swap(edit func(map[int]func(Event))) {
	m := map[int]func(Event){}
	if old := b.subs.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	edit(m)
	b.subs.Store(&m)
}
