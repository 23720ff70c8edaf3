package auditlog

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Entries as Vault v1.14.1's file device writes them (trimmed).
const log = `{"time":"2026-12-04T17:50:49.98Z","type":"response","auth":{"client_token":"hmac-sha256:alice","entity_id":"e-alice","display_name":"userpass-alice","policies":["default","otel-agent"]},"request":{"id":"r-1","operation":"read","path":"identity/oidc/token/otel-agent","remote_address":"127.0.0.1"},"response":{"data":{"token":"hmac-sha256:jwt1","client_id":"hmac-sha256:x","ttl":3600}}}
not json
{"time":"2026-12-04T17:50:50Z","type":"response","auth":{"client_token":"hmac-sha256:tok","entity_id":"e-bob"},"request":{"id":"r-2","operation":"update","path":"auth/userpass/login/bob","remote_address":"10.0.0.2"},"response":{"auth":{"client_token":"hmac-sha256:tok","entity_id":"e-bob","display_name":"userpass-bob","policies":["default"]}}}
{"time":"2026-12-04T17:50:51Z","type":"response","auth":{"client_token":"hmac-sha256:tok","entity_id":"e-bob"},"request":{"id":"r-3","operation":"update","path":"auth/token/renew-self"},"response":{"auth":{"client_token":"hmac-sha256:tok","entity_id":"e-bob"}}}
{"time":"2026-12-04T17:50:52Z","type":"request","auth":{"client_token":"hmac-sha256:tok"},"request":{"id":"r-4","operation":"update","path":"secret/data/lightstep/prod"}}
{"time":"2026-12-04T17:50:52Z","type":"response","auth":{"client_token":"hmac-sha256:tok","entity_id":"e-bob","display_name":"userpass-bob"},"request":{"id":"r-4","operation":"update","path":"secret/data/lightstep/prod"},"response":{"data":{"created_time":"hmac-sha256:t","version":7}}}
`

func TestIssuedFindsTheIssuingResponseOnly(t *testing.T) {
	issues, err := FindIssues(strings.NewReader(log), "hmac-sha256:jwt1")
	require.NoError(t, err)
	require.Len(t, issues, 1)
	assert.Equal(t, Issue{Entry: issues[0].Entry, Kind: "identity_token", EntityID: "e-alice", Display: "userpass-alice",
		Policies: []string{"default", "otel-agent"}}, issues[0])
	assert.Equal(t, "r-1", issues[0].Entry.Request.ID)

	issues, err = FindIssues(strings.NewReader(log), "hmac-sha256:tok")
	require.NoError(t, err)
	require.Len(t, issues, 1, "the renewal did not issue the token")
	assert.Equal(t, "login", issues[0].Kind)
	assert.Equal(t, "r-2", issues[0].Entry.Request.ID)
	assert.Equal(t, "10.0.0.2", issues[0].Entry.Request.RemoteAddress)

	issues, err = FindIssues(strings.NewReader(log), "hmac-sha256:nothing")
	require.NoError(t, err)
	assert.Empty(t, issues)
}

func TestFindVersionWrite(t *testing.T) {
	entries, err := FindVersionWrite(strings.NewReader(log), "secret/data/lightstep/prod", 7)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "r-4", entries[0].Request.ID)
	assert.Equal(t, "e-bob", entries[0].Auth.EntityID)
	entries, err = FindVersionWrite(strings.NewReader(log), "secret/data/lightstep/prod", 8)
	require.NoError(t, err)
	assert.Empty(t, entries)
}
