package vaultclient

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// This collector's own identity, through the seam of what is known about
// each login (no Vault): it is published only with everything consumers
// asked for, known for the login in use, and withdrawn otherwise.
func TestOwnIdentityIsNeverPublishedWithoutWhatWasAskedFor(t *testing.T) {
	s := &Session{cfg: AuthConfig{Method: MethodAppRole}, auditDevice: "file", logger: zap.NewNop()}
	si := newSelfIdentity(s)
	s.self = si
	published := func() (*identity.Identity, bool) { return s.VaultIdentity() }
	login := func(entityID string) *loginResult {
		res := &loginResult{token: "t-" + entityID, entityID: entityID}
		s.current.Store(res)
		si.loggedIn(res)
		return res
	}
	hashed := func(res *loginResult, h string) {
		si.mu.Lock()
		si.hmac = &hmacOf{res: res, hmac: h}
		si.mu.Unlock()
		si.publish(res)
	}
	read := func(res *loginResult, e Entity, groups bool) {
		si.mu.Lock()
		si.entity = &entityOf{id: res.entityID, e: e, groups: groups}
		si.publishLocked(res)
		si.mu.Unlock()
	}
	attr := func(key string) (string, bool) {
		id, ok := published()
		require.True(t, ok, "no identity published")
		return id.Get(key)
	}

	first := login("ent-1")
	_, ok := published()
	require.True(t, ok, "nothing asked for: published at login")

	require.NoError(t, si.require([]string{identity.CredentialHMAC}))
	_, ok = published()
	assert.False(t, ok, "asked for the join key: withdrawn until it is known")
	hashed(first, "hmac-sha256:first")
	h, _ := attr(identity.CredentialHMAC)
	assert.Equal(t, "hmac-sha256:first", h)

	second := login("ent-1") // a re-login: a new token
	_, ok = published()
	assert.False(t, ok, "the previous token's join key stays out once another token is in use")
	hashed(first, "hmac-sha256:late") // a hash of the superseded login changes nothing
	_, ok = published()
	assert.False(t, ok)
	hashed(second, "hmac-sha256:second")
	h, _ = attr(identity.CredentialHMAC)
	assert.Equal(t, "hmac-sha256:second", h)

	require.NoError(t, si.require([]string{identity.EntityName}))
	_, ok = published()
	assert.False(t, ok, "asked for the entity's name: withdrawn until the entity is read")
	read(second, Entity{Name: "payments", Metadata: map[string]string{"team": "a"}}, false)
	name, _ := attr(identity.EntityName)
	assert.Equal(t, "payments", name)

	require.NoError(t, si.require([]string{identity.MetadataPrefix + "team"}))
	team, has := attr(identity.MetadataPrefix + "team")
	assert.True(t, has, "the entity read has it: rebuilt at once")
	assert.Equal(t, "a", team)

	require.NoError(t, si.require([]string{identity.Groups}))
	_, ok = published()
	assert.False(t, ok, "the entity was read without its groups: withdrawn until they are read")
	read(second, Entity{Name: "payments", GroupNames: []string{"g"}}, true)
	_, has = attr(identity.Groups)
	assert.True(t, has)

	third := login("ent-2") // another entity: its entity is not known yet
	_, ok = published()
	assert.False(t, ok)
	hashed(third, "hmac-sha256:third")
	_, ok = published()
	assert.False(t, ok, "the hash alone is not enough: the entity is asked for")
	si.mu.Lock()
	si.forbidden = "ent-2" // Vault refuses the read by policy: published with what is known
	si.publishLocked(third)
	si.mu.Unlock()
	id, ok := published()
	require.True(t, ok)
	assert.Equal(t, "ent-2", id.EntityID())
	_, has = id.Get(identity.EntityName)
	assert.False(t, has)
}
