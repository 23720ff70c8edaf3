package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// docCommands returns the shell block the doc marks with
// <!-- commands: name -->.
func docCommands(t *testing.T, doc []byte, name string) string {
	t.Helper()
	m := regexp.MustCompile("(?s)<!-- commands: " + regexp.QuoteMeta(name) + " -->\n```sh\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "no block %q in docs/vault-setup.md", name)
	return string(m[1])
}

// docs/vault-setup.md, followed literally: its commands, run as written
// with the vault CLI against an empty dev server, set up a workload of
// team-a and its team; an agent and a multi-team gateway configured from
// what they produced then deliver the workload's spans to team-a's
// project, stamped with its entity and team. (Set up from the README of
// before, the team claim was missing and the gateway refused every request.)
func TestVaultSetupDocWorks(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "docs", "vault-setup.md"))
	require.NoError(t, err)
	v := vaulttest.Start(t)
	dir := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(testbed.RepoRoot(), "examples"), filepath.Join(dir, "examples")))
	for _, block := range []string{"vault-once", "vault-workload", "vault-team"} {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", docCommands(t, doc, block))
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + filepath.Dir(vaulttest.BinaryPath()) + ":" + os.Getenv("PATH"), "HOME=" + dir,
			"VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.RootToken, "TEAM_LIGHTSTEP_TOKEN=ls-team-a",
			"VAULT_AUDIT_LOG=" + filepath.Join(dir, "vault-audit.log")}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s:\n%s", block, out)
	}
	audience := strings.TrimSpace(testbed.ReadFile(t, filepath.Join(dir, "agent-audience")))

	projects := testbed.StartProjects(t)
	projects.Accept("team-a", "ls-team-a")
	gw := testbed.AppRoleCredentials(t, v, "otel-gateway-teams") // "its role id and a secret id, as in step 2"
	gateway := testbed.StartCollector(t, "gateway", testbed.Example("gateway-multitenant.yaml"), map[string]string{
		"VAULT_ADDR": v.Addr, "VAULT_ROLE_ID_FILE": gw.RoleIDFile, "VAULT_SECRET_ID_FILE": gw.SecretIDFile,
		"AGENT_AUDIENCE": audience, "QUEUE_DIR": filepath.Join(t.TempDir(), "queue"),
		"LIGHTSTEP_ENDPOINT": projects.GRPCAddr, "LIGHTSTEP_INSECURE": "true", "LIGHTSTEP_REFRESH_INTERVAL": "500ms",
	})
	agent := testbed.StartCollector(t, "agent-payments", testbed.Example("agent.yaml"), map[string]string{
		"VAULT_ADDR": v.Addr, "VAULT_ROLE_ID_FILE": filepath.Join(dir, "payments.role-id"),
		"VAULT_SECRET_ID_FILE": filepath.Join(dir, "payments.secret-id"),
		"GATEWAY_ENDPOINT":     gateway.OTLPGRPC, "GATEWAY_INSECURE": "true",
	})
	sender := testbed.NewSender(t, "payments", 0, agent.OTLPGRPC)
	for range 10 {
		require.True(t, sender.Send(batch), "the agent refused spans")
	}
	require.Eventually(t, func() bool { return projects.CountIn("team-a") >= 10*batch }, eventually, poll,
		"spans did not reach team-a's project\ngateway:\n%s", gateway.LogTail(20))
	issues := issuesByHMAC(t, filepath.Join(dir, "vault-audit.log"))
	for _, id := range sender.Sent() {
		require.Equal(t, []string{"team-a"}, projects.Landed(id))
		span, _ := projects.Span(id)
		assert.Equal(t, []string{"team-a"}, span.Resource.Values("vault.tenant"))
		assert.Equal(t, []string{"payments"}, span.Resource.Values("vault.entity.name"))
		hmacs := span.Resource.Values("vault.credential.hmac")
		require.Len(t, hmacs, 1)
		assert.Len(t, issues[hmacs[0]], 1, "the span's credential is not issued in the audit log the doc set up")
	}
	t.Logf("docs/vault-setup.md followed literally: %d spans of workload payments landed in team-a's project, stamped with its entity, team and audit join key", len(sender.Sent()))
}
