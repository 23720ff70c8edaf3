package e2e

import (
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// ourModule is the module users take the components from.
const ourModule = "github.com/vaultlightstep/vaultlightstep"

// ocbBinary is $OCB_BIN (the Makefile exports it), or where `make collector`
// installs ocb v0.165.0 (scripts/cache-dir.sh). Missing fails the test.
func ocbBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("OCB_BIN")
	if path == "" {
		out, err := exec.Command(filepath.Join(testbed.RepoRoot(), "scripts", "cache-dir.sh")).Output()
		require.NoError(t, err)
		path = filepath.Join(strings.TrimSpace(string(out)), "ocb-0.165.0", "builder")
	}
	vaulttest.Need(t, path, "ocb (make collector installs it)")
	return path
}

// A user's own ocb build takes vaultauth and vaultidentity from the module,
// as its builder config's gomod/import entries name them, next to the
// Collector's own components, and they work in it.
func TestComponentsInAUsersOCBBuild(t *testing.T) {
	dir := t.TempDir()
	tmpl, err := template.ParseFiles(testbed.Testdata("ocb-external/builder-config.yaml"))
	require.NoError(t, err)
	config, err := os.Create(filepath.Join(dir, "builder-config.yaml"))
	require.NoError(t, err)
	require.NoError(t, tmpl.Execute(config, map[string]string{"Checkout": testbed.RepoRoot()}))
	require.NoError(t, config.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ocb := exec.CommandContext(ctx, ocbBinary(t), "--config", config.Name())
	ocb.Dir = dir // dist.output_path is relative to it
	ocb.Env = os.Environ()
	if os.Getenv("GOTOOLCHAIN") == "" {
		ocb.Env = append(ocb.Env, "GOTOOLCHAIN=local")
	}
	started := time.Now()
	out, err := ocb.CombinedOutput()
	require.NoError(t, err, "ocb: %s", out)
	bin := filepath.Join(dir, "otelcol-external", "otelcol-external")
	t.Logf("ocb built the user's collector in %s", time.Since(started).Round(100*time.Millisecond))

	t.Run("its binary has the module, from this checkout", func(t *testing.T) {
		info, err := buildinfo.ReadFile(bin)
		require.NoError(t, err)
		assert.Equal(t, "example.com/otelcol-external", info.Main.Path)
		replacedBy := ""
		for _, d := range info.Deps {
			if d.Path == ourModule && d.Replace != nil {
				replacedBy = d.Replace.Path
			}
		}
		assert.Equal(t, testbed.RepoRoot(), replacedBy, "%s, replaced by this checkout, is not among its dependencies", ourModule)
	})

	t.Run("it lists both components", func(t *testing.T) {
		out, err := exec.Command(bin, "components").Output()
		require.NoError(t, err)
		type component struct{ Name, Module string }
		var components struct{ Extensions, Processors []component }
		require.NoError(t, yaml.Unmarshal(out, &components), "%s", out)
		assert.Contains(t, components.Extensions, component{"vaultauth", ourModule + " v0.0.0"})
		assert.Contains(t, components.Processors, component{"vaultidentity", ourModule + " v0.0.0"})
	})

	config2 := testbed.Testdata("ocb-external/collector.yaml")
	t.Run("validate accepts its config and refuses a broken one", func(t *testing.T) {
		env := []string{"VAULT_ADDR=http://127.0.0.1:8200", "VAULT_ROLE_ID_FILE=/vault/role-id", "VAULT_SECRET_ID_FILE=/vault/secret-id",
			"EXPORT_ENDPOINT=127.0.0.1:4317", "OTLP_GRPC_ENDPOINT=127.0.0.1:4317", "HEALTH_ENDPOINT=127.0.0.1:13133", "METRICS_PORT=8888"}
		validate := exec.Command(bin, "validate", "--config", "file:"+config2)
		validate.Env = env
		out, err := validate.CombinedOutput()
		require.NoError(t, err, "%s", out)

		validate = exec.Command(bin, "validate", "--config", "file:"+config2, "--set", "processors::vaultidentity::level=scope")
		validate.Env = env
		out, err = validate.CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), `level: unknown "scope"`)
	})

	t.Run("as an agent it stamps its Vault identity and sends with its identity token", func(t *testing.T) {
		v := vaulttest.Start(t)
		testbed.ConfigureVault(t, v, v.Addr)
		w := testbed.NewWorkload(t, v, "external")
		sink := testbed.StartSink(t)
		t.Setenv("COLLECTOR_BIN", bin)
		agent := testbed.StartCollector(t, "external-agent", config2, map[string]string{
			"VAULT_ADDR":           v.Addr,
			"VAULT_ROLE_ID_FILE":   w.RoleIDFile,
			"VAULT_SECRET_ID_FILE": w.SecretIDFile,
			"EXPORT_ENDPOINT":      sink.GRPCAddr,
		})
		sender := testbed.NewSender(t, w.Name, 0, agent.OTLPGRPC)
		require.True(t, sender.Send(batch), "the agent refused spans")
		require.Eventually(t, func() bool { return len(sink.Missing(sender.Sent())) == 0 }, eventually, poll,
			"spans did not arrive; agent log:\n%s", agent.LogTail(30))
		for _, id := range sender.Sent() {
			span, _ := sink.Span(id)
			require.Equal(t, []string{w.EntityID}, span.Resource.Values("vault.entity.id"))
			require.Equal(t, []string{w.Name}, span.Resource.Values("vault.entity.name"))
		}
		assert.Contains(t, agent.Logs(), `"otelcol.component.id": "debug"`, "the debug exporter saw nothing")
	})
}
