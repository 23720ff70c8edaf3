package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// explainVault is a real Vault with a file audit device, set up from
// examples/vault, and three identities that may fetch the agents' identity
// token: an AppRole agent, a userpass user in a group, and a token made
// with a token role for an entity alias.
type explainVault struct {
	*rotateVault
	log string
}

func startExplainVault(t *testing.T) *explainVault {
	t.Helper()
	v := vaulttest.Start(t)
	log := v.EnableFileAudit(t)
	return &explainVault{rotateVault: startRotateVaultOn(t, v), log: log}
}

func (v *explainVault) explain(t *testing.T, args ...string) result {
	t.Helper()
	env := map[string]string{"VAULT_ADDR": v.Addr, "VAULT_TOKEN": v.RootToken}
	return testApp(env, "", nil).exec(context.Background(), append([]string{"explain"}, args...)...)
}

func TestExplainEntityGrantChains(t *testing.T) {
	v := startExplainVault(t)
	ctx := context.Background()

	// AppRole: the shipped otel-agent role (token policies otel-identity, audit-hash).
	agent := v.AppRoleLogin(t, "otel-agent")
	r := v.explain(t, "--entity", agent.EntityID)
	require.Equal(t, exitSafe, r.code, r)
	assert.Contains(t, r.stdout, "(approle, accessor ")
	assert.Contains(t, r.stdout, "issued by AppRole role otel-agent (auth/approle), token policies otel-identity, audit-hash")
	assert.Contains(t, r.stdout, "the identity token role (read identity/oidc/token/otel-agent) is granted by: otel-identity")
	assert.Contains(t, r.stdout, "the Lightstep token (read secret/data/lightstep/prod) is granted by: none of these policies")
	assert.Contains(t, r.stdout, "the audit hash (update sys/audit-hash/file) is granted by: audit-hash")

	// userpass, with the Lightstep read coming from a group.
	w := v.UserpassWorkload(t, "payments", "otel-identity")
	v.Write(t, "identity/group", map[string]any{"name": "lightstep-readers", "policies": []string{"lightstep-reader"}, "member_entity_ids": []string{w.EntityID}})
	r = v.explain(t, "--entity", w.EntityID)
	require.Equal(t, exitSafe, r.code, r)
	assert.Contains(t, r.stdout, "entity "+w.EntityID+" (payments)")
	assert.Contains(t, r.stdout, "issued by userpass user payments (auth/userpass), token policies otel-identity")
	assert.Contains(t, r.stdout, "group lightstep-readers (")
	assert.Contains(t, r.stdout, "lightstep-reader (from group lightstep-readers)")
	assert.Contains(t, r.stdout, "the Lightstep token (read secret/data/lightstep/prod) is granted by: lightstep-reader")

	// A token made by a token role for an entity alias.
	v.Write(t, "auth/token/roles/batch-jobs", map[string]any{"allowed_policies": []string{"otel-identity"}, "allowed_entity_aliases": []string{"nightly-export"}})
	tok := v.Write(t, "auth/token/create/batch-jobs", map[string]any{"entity_alias": "nightly-export", "policies": []string{"otel-identity"}})
	r = v.explain(t, "--entity", tok.Auth.EntityID)
	require.Equal(t, exitSafe, r.code, r)
	assert.Contains(t, r.stdout, `alias "nightly-export" on auth/token (token,`)
	assert.Contains(t, r.stdout, "issued by token role batch-jobs (allowed policies), token policies otel-identity")
	assert.Contains(t, r.stdout, "the identity token role (read identity/oidc/token/otel-agent) is granted by: otel-identity")

	// --credential-hmac: each identity's identity token, found in the audit log.
	for _, who := range []struct{ name, token, entity, display string }{
		{"approle", agent.Token, agent.EntityID, "approle"},
		{"userpass", w.Token, w.EntityID, "userpass-payments"},
		{"token role", tok.Auth.ClientToken, tok.Auth.EntityID, "token"},
	} {
		jwt := v.IdentityToken(t, who.token, "otel-agent")
		sec, err := v.Client.Logical().WriteWithContext(ctx, "sys/audit-hash/file", map[string]any{"input": jwt})
		require.NoError(t, err)
		r := v.explain(t, "--audit-log", v.log, "--credential-hmac", sec.Data["hash"].(string))
		require.Equal(t, exitSafe, r.code, "%s: %s", who.name, r)
		assert.Contains(t, r.stdout, "operation:      read identity/oidc/token/otel-agent", who.name)
		assert.Contains(t, r.stdout, "entity:         "+who.entity, who.name)
		assert.Contains(t, r.stdout, "display name:   "+who.display, who.name)
		assert.Contains(t, r.stdout, "remote address: 127.0.0.1", who.name)
		assert.Regexp(t, `request id:     [0-9a-f-]{36}`, r.stdout, who.name)
		assert.NotContains(t, r.stdout, jwt)
	}
	r = v.explain(t, "--audit-log", v.log, "--credential-hmac", "hmac-sha256:0000")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, "issued the credential hmac-sha256:0000")
}

// rotate --reason is what explain --version says, with the audit entry of
// the write and the request id rotate printed.
func TestRotateReasonInExplainVersion(t *testing.T) {
	v := startExplainVault(t)
	collector := v.liveCollector(t)
	r := testApp(v.env(), "ls-rotated-token", nil).exec(context.Background(),
		append(rotateArgs(collector, "--reason", "quarterly rotation, ticket SEC-42"), v.writerArgs()...)...)
	require.Equal(t, exitSafe, r.code, r)
	_, after, ok := strings.Cut(r.stdout, "Vault request id ")
	require.True(t, ok, r)
	requestID, _, _ := strings.Cut(after, ";")

	e := v.explain(t, "--audit-log", v.log, "--version", "2", "--path", "secret/data/lightstep/prod")
	require.Equal(t, exitSafe, e.code, e)
	assert.Contains(t, e.stdout, "version 2 of secret/data/lightstep/prod was written by:")
	assert.Contains(t, e.stdout, "request id:     "+requestID)
	assert.Contains(t, e.stdout, "display name:   approle")
	assert.Contains(t, e.stdout, "reason:         quarterly rotation, ticket SEC-42")
	assert.Contains(t, e.stdout, "policies:       default, lightstep-token-writer")
	assert.Regexp(t, `rotated by:     [0-9a-f-]{36}`, e.stdout)
	assert.NotContains(t, e.stdout, "ls-rotated-token")

	e = v.explain(t, "--audit-log", v.log, "--version", "7")
	assert.Equal(t, exitFailed, e.code)
	assert.Contains(t, e.stderr, "no entry of "+v.log+" wrote version 7")
}

func TestParseExplain(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "ask one question"},
		{[]string{"--entity", "e", "--credential-hmac", "h"}, "ask one question"},
		{[]string{"--credential-hmac", "h"}, "--audit-log: required"},
		{[]string{"--version", "3"}, "--audit-log: required"},
	} {
		_, err := testApp(nil, "", nil).parseExplain(tc.args)
		assert.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}
