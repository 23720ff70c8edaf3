package vaultauthextension

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/auditlog"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// auditHashPolicy is what a collector needs to hash with the file device.
const auditHashPolicy = `path "sys/audit-hash/file" { capabilities = ["update"] }`

// auditEnv is a Vault with a file audit device, the identity environment
// (alice and bob, userpass, with identity tokens) and an AppRole for the
// gateway that may hash with the device.
type auditEnv struct {
	*identityEnv
	log              string
	roleID, secretID string
}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	v := vaulttest.Start(t)
	log := v.EnableFileAudit(t)
	e := identityEnvOn(t, v)
	v.PutPolicy(t, "audit-hash", auditHashPolicy)
	v.PutPolicy(t, "otel-gateway", gatewayPolicy)
	roleID, secretID := v.AppRole(t, "otel-gateway", map[string]any{"token_policies": "otel-gateway,audit-hash"})
	return &auditEnv{identityEnv: e, log: log, roleID: roleID, secretID: secretID}
}

// gateway starts a gateway in mode ("jwt" or "lookup") that stamps the audit
// HMAC, with on_failure onFailure and the audit device device.
func (e *auditEnv) gateway(t *testing.T, mode, device, onFailure string) *harness {
	t.Helper()
	cfg := withAppRole(e.jwtServerConfig(), e.roleID, e.secretID)
	srv := cfg.Server.Get()
	if mode == "lookup" {
		srv.IdentityToken = configoptional.None[IdentityTokenServerConfig]()
		srv.TokenLookup.GetOrInsertDefault()
	}
	a := srv.Audit.GetOrInsertDefault()
	a.Device, a.OnFailure = device, onFailure
	h := startExtension(t, cfg)
	h.waitStatus(t, componentstatus.StatusOK)
	return h
}

// issuedBy finds, in the audit log, the entries that issued the credential
// whose HMAC is h.
func (e *auditEnv) issuedBy(t *testing.T, h string) []auditlog.Issue {
	t.Helper()
	f, err := os.Open(e.log)
	require.NoError(t, err)
	defer f.Close()
	issues, err := auditlog.FindIssues(f, h)
	require.NoError(t, err)
	return issues
}

func hmacOf(t *testing.T, id *identity.Identity) string {
	t.Helper()
	h, ok := id.Get(identity.CredentialHMAC)
	require.True(t, ok, "no %s on the identity", identity.CredentialHMAC)
	require.True(t, strings.HasPrefix(h, "hmac-sha256:"), "not an audit HMAC")
	return h
}

// Both modes: the identity carries the audit HMAC of the credential, and it
// finds exactly one entry in Vault's audit log, the one that issued the
// credential to the identity's own entity. A new credential of the same
// entity gets a new key; the cached credential costs no second hash.
func TestAuditHMACFindsTheIssuingEntry(t *testing.T) {
	e := newAuditEnv(t)
	t.Run("identity_token", func(t *testing.T) {
		h := e.gateway(t, "jwt", "file", "hold")
		var seen []string
		for i := range 2 { // two identity tokens of alice's: a rotation
			if i > 0 {
				// Vault's identity tokens have second resolution: two issued
				// to one entity within a second are the same token.
				last := time.Now().Unix()
				require.Eventually(t, func() bool { return time.Now().Unix() > last }, eventually, poll)
			}
			jwt := e.v.IdentityToken(t, e.alice.Token, agentRole)
			id, err := authenticate(h, "Bearer "+jwt)
			require.NoError(t, err)
			again, err := authenticate(h, "Bearer "+jwt)
			require.NoError(t, err)
			hm := hmacOf(t, id)
			assert.Equal(t, hm, hmacOf(t, again))
			issues := e.issuedBy(t, hm)
			require.Len(t, issues, 1, "issuing entries")
			assert.Equal(t, "identity_token", issues[0].Kind)
			assert.Equal(t, e.alice.EntityID, issues[0].EntityID)
			assert.Equal(t, id.EntityID(), issues[0].EntityID)
			assert.Equal(t, "identity/oidc/token/"+agentRole, issues[0].Entry.Request.Path)
			assert.NotEmpty(t, issues[0].Entry.Request.ID)
			seen = append(seen, hm)
		}
		assert.NotEqual(t, seen[0], seen[1], "a new credential must get a new key")
	})
	t.Run("token_lookup", func(t *testing.T) {
		h := e.gateway(t, "lookup", "file", "hold")
		bob2 := e.bob
		bob2.Token = e.v.Login(t, e.bob) // a second token of bob's: a new key
		for _, w := range []vaulttest.Workload{e.alice, e.bob, bob2} {
			id, err := authenticate(h, "Bearer "+w.Token)
			require.NoError(t, err)
			issues := e.issuedBy(t, hmacOf(t, id))
			require.Len(t, issues, 1, "issuing entries")
			assert.Equal(t, "login", issues[0].Kind)
			assert.Equal(t, w.EntityID, issues[0].EntityID)
			assert.Equal(t, "auth/userpass/login/"+w.Name, issues[0].Entry.Request.Path)
		}
	})
}

// What the gateway does with a verified credential Vault cannot hash (the
// device is not there, as when an operator disabled it): hold tells the
// sender to retry, refuse refuses, stamp_without stamps without the key.
func TestAuditHashFailurePolicies(t *testing.T) {
	e := newAuditEnv(t)
	for _, tc := range []struct {
		onFailure string
		wantErr   error
	}{
		{"hold", errVerifierUnavailable},
		{"refuse", errUnauthenticated},
		{"stamp_without", nil},
	} {
		t.Run(tc.onFailure, func(t *testing.T) {
			h := e.gateway(t, "jwt", "no-such-device", tc.onFailure)
			id, err := authenticate(h, "Bearer "+e.v.IdentityToken(t, e.alice.Token, agentRole))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			_, has := id.Get(identity.CredentialHMAC)
			assert.False(t, has)
			assert.Equal(t, e.alice.EntityID, id.EntityID())
		})
	}
}

// A collector stamping its own identity (vaultidentity from: extension)
// carries the HMAC of its own Vault token: it finds the login that issued
// that token to its entity. Without audit.device the attribute is refused
// at start, naming the key.
func TestOwnCredentialHMACFindsItsLogin(t *testing.T) {
	e := newAuditEnv(t)
	cfg := withAppRole(clientConfig(e.v.Addr), e.roleID, e.secretID)
	cfg.Client = configoptional.None[ClientConfig]() // an identity-only instance
	cfg.Audit.GetOrInsertDefault().Device = "file"
	h := startExtension(t, cfg)
	provider := h.ext.(identity.Provider)
	require.NoError(t, provider.RequireAttributes([]string{identity.EntityID, identity.CredentialHMAC}))
	var id *identity.Identity
	require.Eventually(t, func() bool {
		got, ok := provider.VaultIdentity()
		id = got
		return ok
	}, eventually, poll)
	issues := e.issuedBy(t, hmacOf(t, id))
	require.Len(t, issues, 1)
	assert.Equal(t, "login", issues[0].Kind)
	assert.Equal(t, "auth/approle/login", issues[0].Entry.Request.Path)
	assert.Equal(t, id.EntityID(), issues[0].EntityID)

	plain := withAppRole(clientConfig(e.v.Addr), e.roleID, e.secretID)
	plain.Client = configoptional.None[ClientConfig]()
	other := startExtension(t, plain)
	err := other.ext.(identity.Provider).RequireAttributes([]string{identity.CredentialHMAC})
	assert.ErrorContains(t, err, "vault.credential.hmac needs audit.device")
}

// The processor may start after this collector has logged in (the race
// behind a CI failure of TestAuditOwnCredentialSidecar: spans stamped
// with the entity but not the join key). An identity published before
// the processor asked for vault.credential.hmac is withdrawn at once when
// it asks, and comes back with the key: never without it.
func TestOwnIdentityAskedForAfterLoginNeverLacksWhatWasAsked(t *testing.T) {
	e := newAuditEnv(t)
	e.v.PutPolicy(t, "self", `path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] }`)
	roleID, secretID := e.v.AppRole(t, "self-reader", map[string]any{"token_policies": "audit-hash,self"})
	cfg := withAppRole(clientConfig(e.v.Addr), roleID, secretID)
	cfg.Client = configoptional.None[ClientConfig]()
	cfg.Audit.GetOrInsertDefault().Device = "file"
	h := startExtension(t, cfg)
	provider := h.ext.(identity.Provider)
	require.Eventually(t, func() bool { _, ok := provider.VaultIdentity(); return ok }, eventually, poll, "first login")

	for _, asked := range []string{identity.CredentialHMAC, identity.EntityName} {
		require.NoError(t, provider.RequireAttributes([]string{identity.EntityID, asked}))
		if id, ok := provider.VaultIdentity(); ok {
			_, has := id.Get(asked)
			require.True(t, has, "an identity without %s after it was asked for", asked)
		}
		require.Eventually(t, func() bool {
			id, ok := provider.VaultIdentity()
			if !ok {
				return false
			}
			_, has := id.Get(asked)
			return has
		}, eventually, poll, "%s never came", asked)
	}
	id, _ := provider.VaultIdentity()
	require.Len(t, e.issuedBy(t, hmacOf(t, id)), 1)
}

// eventLog collects the audit events of one extension.
type eventLog struct {
	mu     sync.Mutex
	events []auditevent.Event
}

func (l *eventLog) add(e auditevent.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Name == name {
			n++
		}
	}
	return n
}

func (l *eventLog) all() []auditevent.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]auditevent.Event(nil), l.events...)
}

func attr(e auditevent.Event, key string) (auditevent.Attr, bool) {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a, true
		}
	}
	return auditevent.Attr{}, false
}

// A scripted run: N senders, one rotation of the Lightstep token, and a
// flood of 10,000 garbage credentials. Counted per kind: one acceptance
// per sender credential (none for cached requests), one export credential
// change per version, one login per instance, and refusals aggregated into
// a bounded number of events. No event holds any credential or secret the
// test created.
func TestAuditEventsOfAScriptedRun(t *testing.T) {
	const senders, flood = 5, 10000
	e := newAuditEnv(t)
	gw := e.gateway(t, "jwt", "file", "hold")
	gwEvents := &eventLog{}
	defer gw.ext.(auditevent.Source).SubscribeAuditEvents(gwEvents.add)()

	seedLightstep(t, e.v, "ls-token-v1")
	exp := startExtension(t, withToken(clientConfig(e.v.Addr), readerToken(t, e.v, "1h")))
	expEvents := &eventLog{}
	unsubscribe := exp.ext.(auditevent.Source).SubscribeAuditEvents(expEvents.add)
	defer unsubscribe()
	exp.waitSent(t, "ls-token-v1")

	var secrets []string
	for i := range senders {
		w := e.v.UserpassWorkload(t, fmt.Sprintf("sender-%d", i), "otel-agent")
		jwt := e.v.IdentityToken(t, w.Token, agentRole)
		secrets = append(secrets, w.Token, w.Password, jwt)
		for range 3 { // the second and third are answered from the cache
			_, err := authenticate(gw, "Bearer "+jwt)
			require.NoError(t, err)
		}
	}
	e.v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2", "rotation_reason": "quarterly"})
	exp.waitSent(t, "ls-token-v2")
	secrets = append(secrets, "ls-token-v1", "ls-token-v2", e.roleID, e.secretID, e.alice.Token, e.bob.Token)

	for i := range flood {
		garbage := fmt.Sprintf("eyJhbGciOiJSUzI1NiJ9.garbage-%d.sig", i)
		_, err := authenticate(gw, "Bearer "+garbage)
		require.Error(t, err)
		if i < 3 {
			secrets = append(secrets, garbage)
		}
	}
	require.NoError(t, gw.ext.Shutdown(context.Background())) // flushes the refusal tally

	assert.Equal(t, senders, gwEvents.count(auditevent.CredentialAccepted), "acceptances")
	refusals := gwEvents.count(auditevent.CredentialRefused)
	assert.Positive(t, refusals)
	assert.LessOrEqual(t, refusals, 4, "refusal events for %d garbage credentials from one peer", flood)
	var refused int64
	for _, ev := range gwEvents.all() {
		if ev.Name == auditevent.CredentialRefused {
			n, _ := attr(ev, auditevent.RefusalCount)
			refused += n.Int
		}
		if ev.Name == auditevent.CredentialAccepted {
			h, ok := attr(ev, identity.CredentialHMAC)
			require.True(t, ok, "an acceptance without the credential's HMAC")
			assert.Len(t, e.issuedBy(t, h.Str), 1)
		}
	}
	assert.Equal(t, int64(flood), refused, "every refusal counted in the events")

	// The first value may have been read before the subscription: the
	// rotation is the change to version 2, announced once.
	version2 := func() []auditevent.Event {
		var out []auditevent.Event
		for _, ev := range expEvents.all() {
			if v, _ := attr(ev, auditevent.SecretVersion); ev.Name == auditevent.ExportCredentialChanged && v.Int == 2 {
				out = append(out, ev)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(version2()) == 1 }, eventually, poll)
	for _, ev := range version2() {
		r, _ := attr(ev, auditevent.RotationReason)
		assert.Equal(t, "quarterly", r.Str)
		id, _ := attr(ev, auditevent.RequestID)
		assert.NotEmpty(t, id.Str, "the Vault request id of the read")
	}
	t.Logf("events: %d accepted, %d refusal events for %d refusals, %d export credential changes",
		gwEvents.count(auditevent.CredentialAccepted), refusals, refused, expEvents.count(auditevent.ExportCredentialChanged))

	for _, ev := range append(gwEvents.all(), expEvents.all()...) {
		for _, a := range ev.Attrs {
			for _, s := range secrets {
				if a.Str != "" && strings.Contains(a.Str, s) {
					t.Fatalf("event %s attribute %s holds a secret the test created", ev.Name, a.Key)
				}
			}
		}
	}
}
