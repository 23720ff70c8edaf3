package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/auditlog"
	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
)

// issuesByHMAC reads the Vault audit log once: every credential an entry
// issued, by its HMAC.
func issuesByHMAC(t *testing.T, path string) map[string][]auditlog.Issue {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string][]auditlog.Issue{}
	require.NoError(t, auditlog.Scan(f, func(e auditlog.Entry) bool {
		for _, h := range issuedHMACs(e) {
			if is, ok := e.Issued(h); ok {
				out[h] = append(out[h], is)
			}
		}
		return true
	}))
	return out
}

// issuedHMACs are the HMACs an entry may have issued.
func issuedHMACs(e auditlog.Entry) []string {
	if e.Response == nil {
		return nil
	}
	var out []string
	if e.Response.Auth != nil {
		out = append(out, e.Response.Auth.ClientToken)
	}
	if tok, ok := e.Response.Data["token"].(string); ok {
		out = append(out, tok)
	}
	return out
}

// The audit trail end to end, with the built collector, agents whose
// identity tokens rotate every 2 s (a 3 s TTL), and Vault's file audit device: every
// arrived span carries one vault.credential.hmac (the senders forged one
// too), it finds exactly one issuing entry in Vault's audit log, and that
// entry issued the credential to the span's own entity. The audit events
// reach Lightstep as log records, without a credential in them, and a
// flood of garbage credentials becomes a bounded number of them.
func TestAuditTrailEndToEnd(t *testing.T) {
	d := testbed.Start(t, testbed.Options{IdentityTokenTTL: "3s"})
	deadline := time.Now().Add(7 * time.Second) // spans spread over 3 identity tokens per agent
	for time.Now().Before(deadline) {
		sendEach(t, d, 1)
		time.Sleep(50 * time.Millisecond) // a steady rate, not a flood
	}
	awaitAll(t, d)

	issues := issuesByHMAC(t, d.AuditLog)
	checked, keysPerWorkload := 0, map[string]map[string]bool{}
	for i, s := range d.Senders {
		w := d.Workloads[i]
		keysPerWorkload[w.Name] = map[string]bool{}
		for _, id := range s.Sent() {
			span, _ := d.Sink.Span(id)
			hmacs := span.Resource.Values("vault.credential.hmac")
			require.Len(t, hmacs, 1, "%s span: vault.credential.hmac values", w.Name)
			h := hmacs[0]
			require.NotEqual(t, testbed.ForgedHMAC, h, "the forged join key survived")
			found := issues[h]
			require.Len(t, found, 1, "%s span: audit entries that issued its credential", w.Name)
			require.Equal(t, w.EntityID, found[0].EntityID, "%s span: the credential was issued to another entity", w.Name)
			require.Equal(t, []string{w.EntityID}, span.Resource.Values("vault.entity.id"))
			keysPerWorkload[w.Name][h] = true
			checked++
		}
	}
	for name, keys := range keysPerWorkload {
		assert.GreaterOrEqual(t, len(keys), 2, "%s: its rotated identity tokens gave its spans new keys", name)
	}

	const flood = 1000
	for i := range flood {
		require.Equal(t, 401, postJSON(t, d.Gateway.OTLPHTTP, fmt.Sprintf("eyJhbGciOiJSUzI1NiJ9.garbage-%d.x", i), gzipped(t, []byte(`{}`))))
	}
	refusedEvents := func() (events int, refusals int64) {
		for _, ev := range d.Sink.Events() {
			if ev.Name == "vault.credential.refused" {
				events++
				var n int64
				fmt.Sscan(ev.Attributes.One("vault.refusal.count"), &n)
				refusals += n
			}
		}
		return
	}
	require.Eventually(t, func() bool { _, n := refusedEvents(); return n >= flood }, eventually, poll,
		"the refusals never arrived as audit events: %v", kinds(d.Sink.Events()))
	events, refusals := refusedEvents()
	assert.LessOrEqual(t, events, 4, "refusal events for %d garbage credentials", flood)

	byKind := kinds(d.Sink.Events())
	accepted := 0
	for _, ev := range d.Sink.Events() {
		if ev.Name == "vault.credential.accepted" {
			accepted++
			require.Len(t, issues[ev.Attributes.One("vault.credential.hmac")], 1, "an accepted credential without its issuing entry")
		}
		for _, kv := range ev.Attributes {
			assert.NotContains(t, kv.Value, "eyJ", "an event holds a JWT")
			assert.NotContains(t, kv.Value, "ls-token", "an event holds the Lightstep token")
		}
	}
	assert.Positive(t, byKind["vault.login"])
	assert.Positive(t, byKind["vault.export_credential.changed"])
	assert.GreaterOrEqual(t, accepted, len(d.Workloads)*2)
	t.Logf("join: %d spans checked, each matched exactly one issuing audit entry of its own entity; keys per workload %v; "+
		"events %v; %d garbage credentials became %d refusal events counting %d", checked, counts(keysPerWorkload), byKind, flood, events, refusals)
}

func kinds(events []testbed.Event) map[string]int {
	out := map[string]int{}
	for _, ev := range events {
		out[ev.Name]++
	}
	return out
}

func counts(m map[string]map[string]bool) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

// A sidecar stamping its own identity (examples/sidecar.yaml, vaultidentity
// from: extension) stamps the audit HMAC of its own Vault token: every
// arrived span's key finds exactly one entry in the audit log, the AppRole
// login that issued that token to the span's entity.
func TestAuditOwnCredentialSidecar(t *testing.T) {
	d := testbed.Start(t, testbed.Options{Workloads: []string{"payments"}})
	creds := testbed.AppRoleCredentials(t, d.Vault, "otel-sidecar")
	sidecar := testbed.StartCollector(t, "sidecar", testbed.Example("sidecar.yaml"), map[string]string{
		"VAULT_ADDR": d.Proxy.Addr, "VAULT_ROLE_ID_FILE": creds.RoleIDFile, "VAULT_SECRET_ID_FILE": creds.SecretIDFile,
		"LIGHTSTEP_ENDPOINT": d.StandIn.OTLPGRPC, "LIGHTSTEP_INSECURE": "true",
	})
	sender := testbed.NewSender(t, "reports", 9, sidecar.OTLPGRPC)
	for range 10 {
		require.True(t, sender.Send(batch), "the sidecar refused spans")
	}
	require.Eventually(t, func() bool { return len(d.Sink.Missing(sender.Sent())) == 0 }, eventually, poll,
		"spans did not arrive\n%s", sidecar.LogTail(20))
	issues := issuesByHMAC(t, d.AuditLog)
	keys := map[string]bool{}
	for _, id := range sender.Sent() {
		span, _ := d.Sink.Span(id)
		hmacs := span.Resource.Values("vault.credential.hmac")
		require.Len(t, hmacs, 1)
		require.NotEqual(t, testbed.ForgedHMAC, hmacs[0])
		found := issues[hmacs[0]]
		require.Len(t, found, 1, "audit entries that issued the sidecar's token")
		require.Equal(t, "auth/approle/login", found[0].Entry.Request.Path)
		require.Equal(t, span.Resource.One("vault.entity.id"), found[0].EntityID)
		keys[hmacs[0]] = true
	}
	t.Logf("sidecar: %d spans, each with its own token's key (%d distinct), each finding its AppRole login", len(sender.Sent()), len(keys))
}
