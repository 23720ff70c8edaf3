package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// selfIdentity is this collector's own Vault identity: the entity id and
// policies come with each login; what needs the entity (its name, metadata,
// groups) is read only when a consumer asked for it (RequireAttributes), so
// instances that never stamp their own identity never read their entity.
type selfIdentity struct {
	s *Session

	mu     sync.Mutex
	rules  identity.Rules // what consumers asked for, by convention of the names
	entity *entityOf      // the last entity read
	// forbidden is the entity id whose read Vault refused by policy: its
	// identity is published without the entity's attributes (said once,
	// at warn level), since retrying cannot help.
	forbidden string
	// wantHMAC: a consumer stamps vault.credential.hmac, the audit HMAC of
	// this collector's token, read once per login into hmac.
	wantHMAC bool
	hmac     *hmacOf

	current atomic.Pointer[identity.Identity]
	wake    chan struct{}
	warned  atomic.Bool
	// warnedHash: a 403 on sys/audit-hash was said once at warn level.
	warnedHash atomic.Bool
}

func newSelfIdentity(s *Session) *selfIdentity {
	return &selfIdentity{s: s, wake: make(chan struct{}, 1)}
}

// RequireAttributes makes this collector's identity carry the named
// attributes (identity.Provider); it fails for names it cannot provide.
func (s *Session) RequireAttributes(names []string) error {
	return s.self.require(names)
}

// VaultIdentity is the identity of the current login (false before the
// first login, or for a token without an entity). No I/O.
func (s *Session) VaultIdentity() (*identity.Identity, bool) {
	id := s.self.current.Load()
	return id, id != nil && id.EntityID() != ""
}

func (si *selfIdentity) require(names []string) error {
	si.mu.Lock()
	defer si.mu.Unlock()
	added := false
	for _, n := range names {
		if n == identity.EntityID || n == identity.Namespace || n == identity.Tenant {
			continue
		}
		if n == identity.CredentialHMAC {
			if err := si.canHash(); err != nil {
				return err
			}
			added = added || !si.wantHMAC
			si.wantHMAC = true
			continue
		}
		src, ok := identity.ConventionalSource(n)
		if !ok {
			return fmt.Errorf("this collector's own identity has no attribute %q (it has %s, %s, %s, %s, %s<key>)",
				n, identity.EntityID, identity.Namespace, identity.EntityName, identity.Policies, identity.MetadataPrefix)
		}
		if !containsKey(si.rules, n) {
			si.rules = append(si.rules, identity.Rule{Key: n, Source: src})
			added = true
		}
	}
	// An identity published before this requirement lacks what it asks
	// for: rebuilt at once when what it needs is known, withdrawn (fail
	// closed) until it is read otherwise.
	if res := si.s.current.Load(); added && res != nil {
		si.publishLocked(res)
	}
	select {
	case si.wake <- struct{}{}:
	default:
	}
	return nil
}

// canHash says why this collector cannot stamp its own credential's HMAC.
func (si *selfIdentity) canHash() error {
	switch {
	case si.s.auditDevice == "":
		return fmt.Errorf("%s needs audit.device in the vaultauth extension: the Vault audit device to hash this collector's token with", identity.CredentialHMAC)
	case si.s.cfg.Method == MethodAgent:
		return fmt.Errorf("%s cannot be stamped with auth method agent: the Vault Agent holds the token", identity.CredentialHMAC)
	}
	return nil
}

// hmacOf is the audit HMAC of one login's token.
type hmacOf struct {
	res  *loginResult
	hmac string
}

// entityOf is an entity read, with the id it was read for and whether
// its groups were read with it.
type entityOf struct {
	id     string
	e      Entity
	groups bool
}

func containsKey(r identity.Rules, key string) bool {
	for _, rule := range r {
		if rule.Key == key {
			return true
		}
	}
	return false
}

// loggedIn publishes what is known after a login: at once when nothing
// more is needed (or the entity was read before), otherwise after the
// entity read, so consumers see a complete identity.
func (si *selfIdentity) loggedIn(res *loginResult) {
	si.publish(res) // or withdraw the previous login's, until this one's is known
	select {
	case si.wake <- struct{}{}:
	default:
	}
}

// readyLocked says whether everything consumers asked for is known for
// res (si.mu held).
func (si *selfIdentity) readyLocked(res *loginResult) bool {
	hmacKnown := !si.wantHMAC || (si.hmac != nil && si.hmac.res == res)
	entityKnown := !si.needsEntity() || res.entityID == "" || si.forbidden == res.entityID ||
		(si.entity != nil && si.entity.id == res.entityID && (si.entity.groups || !si.rules.Needs(identity.FromEntityGroups)))
	return hmacKnown && entityKnown
}

func (si *selfIdentity) needsEntity() bool {
	return si.rules.Needs(identity.FromEntityName, identity.FromEntityMetadata, identity.FromEntityGroups)
}

// publish publishes the identity of res, when everything consumers asked
// for is known for it, and withdraws the published one otherwise (fail
// closed: no identity rather than one without an attribute asked for, or
// with the previous token's join key).
func (si *selfIdentity) publish(res *loginResult) {
	si.mu.Lock()
	defer si.mu.Unlock()
	si.publishLocked(res)
}

// publishLocked is publish with si.mu held, so that a requirement added
// meanwhile (require) is never overwritten by an identity built without it.
func (si *selfIdentity) publishLocked(res *loginResult) {
	if si.s.current.Load() != res {
		return // a newer login publishes its own
	}
	if !si.readyLocked(res) {
		si.current.Store(nil)
		return
	}
	var extra []identity.Attribute
	if si.wantHMAC {
		extra = append(extra, identity.Attribute{Key: identity.CredentialHMAC, Value: si.hmac.hmac})
	}
	facts := identity.Facts{Policies: res.policies}
	if ent := si.entity; ent != nil && ent.id == res.entityID {
		facts.EntityName, facts.EntityMetadata, facts.GroupNames = ent.e.Name, ent.e.Metadata, ent.e.GroupNames
	}
	ns := res.namespace
	if ns == "" {
		ns = si.s.namespace
	}
	si.current.Store(identity.New(res.entityID, NamespaceFromPath(ns), append(si.rules.Apply(facts), extra...)...))
}

// run resolves the entity-backed attributes after each login and each new
// requirement, retrying failures with backoff until they succeed or are
// refused by policy (said once, at warn level).
func (si *selfIdentity) run(ctx context.Context) {
	b := NewBackoff(si.s.retry)
	for {
		select {
		case <-ctx.Done():
			return
		case <-si.wake:
		}
		for ctx.Err() == nil {
			err := si.resolve(ctx)
			if err == nil || errors.Is(err, ErrEntityForbidden) {
				b.Reset()
				break
			}
			if isStatus(err, 403) && si.warnedHash.CompareAndSwap(false, true) {
				si.s.logger.Warn("cannot hash this collector's token with the audit device, so its own identity is not stamped "+
					"(fail closed); grant update on sys/audit-hash/<audit.device>", zap.Error(err))
			}
			si.s.logger.Debug("cannot read this collector's Vault entity yet; retrying", zap.Error(err))
			if !b.Wait(ctx) {
				return
			}
		}
	}
}

func (si *selfIdentity) resolve(ctx context.Context) error {
	res := si.s.current.Load()
	if res == nil {
		return nil // published at login
	}
	if err := si.hashToken(ctx, res); err != nil {
		return err
	}
	si.mu.Lock()
	needs, groups := si.needsEntity(), si.rules.Needs(identity.FromEntityGroups)
	si.mu.Unlock()
	if !needs || res.entityID == "" {
		si.publish(res)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, si.s.timeout)
	defer cancel()
	e, err := ReadEntity(ctx, si.s, res.entityID, groups)
	if errors.Is(err, ErrEntityForbidden) {
		// Refused by policy: retrying cannot help, so the identity goes
		// out with its id and without what the entity would add.
		si.mu.Lock()
		si.forbidden = res.entityID
		si.publishLocked(res)
		si.mu.Unlock()
		if si.warned.CompareAndSwap(false, true) {
			si.s.logger.Warn("cannot read this collector's own Vault entity, so attributes that need it are not stamped; "+
				"grant read on identity/entity/id/{{identity.entity.id}} (and identity/group/id/* for groups)", zap.Error(err))
		}
		return err
	}
	if err != nil {
		return err // retried; what was published for this login stays, or nothing (fail closed)
	}
	si.mu.Lock()
	si.entity, si.forbidden = &entityOf{id: res.entityID, e: e, groups: groups}, ""
	si.publishLocked(res)
	si.mu.Unlock()
	return nil
}

// hashToken reads the audit HMAC of res's token once, when a consumer
// stamps it.
func (si *selfIdentity) hashToken(ctx context.Context, res *loginResult) error {
	si.mu.Lock()
	need := si.wantHMAC && res.token != "" && (si.hmac == nil || si.hmac.res != res)
	si.mu.Unlock()
	if !need {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, si.s.timeout)
	defer cancel()
	h, err := AuditHash(ctx, si.s, si.s.auditDevice, res.token)
	if err != nil {
		return fmt.Errorf("hash this collector's token for %s: %w", identity.CredentialHMAC, err)
	}
	si.mu.Lock()
	si.hmac = &hmacOf{res: res, hmac: h}
	si.mu.Unlock()
	return nil
}

// NamespaceFromPath turns Vault's namespace_path ("" or "team-a/") into the
// namespace attribute value ("root" or "team-a").
func NamespaceFromPath(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return identity.RootNamespace
	}
	return p
}
