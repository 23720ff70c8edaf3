//go:build image

// The container image's test: `make image-test` (needs Docker; not part of
// `make test`, whose CI has no daemon) builds the image and runs
// go test -tags image -run TestImage ./e2e/.

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
)

// The image is what deploy/image/Dockerfile says: static binary as the
// entrypoint, non-root user, the host's CA bundle, the example configs.
func TestImageContents(t *testing.T) {
	image := testbed.Image()
	out, err := exec.Command("docker", "image", "inspect", image).Output()
	require.NoError(t, err, "image %s: run `make image`", image)
	var inspect []struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
		}
	}
	require.NoError(t, json.Unmarshal(out, &inspect))
	require.Len(t, inspect, 1)
	cfg := inspect[0].Config
	assert.Equal(t, "65532:65532", cfg.User)
	assert.Equal(t, []string{"/otelcol-vaultlightstep"}, cfg.Entrypoint)
	assert.Equal(t, []string{"--config", testbed.ContainerConfig}, cfg.Cmd)
	t.Logf("image %s: %.1f MB", image, float64(inspect[0].Size)/1e6)

	version, err := exec.Command("docker", "run", "--rm", "--network", "none", image, "--version").CombinedOutput()
	require.NoError(t, err, "%s", version)
	assert.True(t, strings.HasPrefix(string(version), "otelcol-vaultlightstep version "), "%s", version)

	// Files, read from a created (never started) container.
	name := "vaultlightstep-contents-" + strings.ReplaceAll(t.Name(), "/", "-")
	_ = exec.Command("docker", "rm", "--force", name).Run()
	out, err = exec.Command("docker", "create", "--name", name, image).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "--force", name).Run() })
	file := func(path string) string {
		t.Helper()
		out, err := exec.Command("docker", "cp", name+":"+path, "-").Output() // a tar stream
		require.NoError(t, err, "docker cp %s", path)
		tr := tar.NewReader(bytes.NewReader(out))
		_, err = tr.Next()
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		return string(b)
	}
	host, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	require.NoError(t, err)
	assert.Equal(t, string(host), file("/etc/ssl/certs/ca-certificates.crt"), "the CA bundle is not the host's")
	assert.Contains(t, file("/etc/passwd"), ":x:65532:65532:")
	assert.Contains(t, file("/etc/group"), ":x:65532:")
	gateway, err := os.ReadFile(testbed.Example("gateway.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(gateway), file("/etc/otelcol-vaultlightstep/gateway.yaml"))
}

// The image runs as the shipped deployment's gateway: examples/gateway.yaml
// mounted, with the environment testbed.Start gives the gateway, against a
// real Vault dev server, the Lightstep stand-in and agents on loopback.
func TestImageAsGateway(t *testing.T) {
	started := time.Now()
	e, gw := testbed.StartWithGatewayImage(t, testbed.Image(), testbed.Options{})
	t.Logf("deployment with the gateway in container %s up in %s", gw.ContainerName, time.Since(started).Round(time.Millisecond))

	uid, gid, err := gw.ProcessIDs()
	require.NoError(t, err)
	assert.Equal(t, "65532", uid, "the collector in the container runs as")
	assert.Equal(t, "65532", gid)

	t.Run("every span arrives stamped with its own workload's identity", func(t *testing.T) {
		t0 := time.Now()
		sendEach(t, e, 10)
		sent := awaitAll(t, e)
		for i, s := range e.Senders {
			w := e.Workloads[i]
			for _, id := range s.Sent() {
				span, _ := e.Sink.Span(id)
				require.Equal(t, []string{w.EntityID}, span.Resource.Values("vault.entity.id"), "%s span", w.Name)
				require.Equal(t, []string{w.Name}, span.Resource.Values("vault.entity.name"), "%s span", w.Name)
				require.Empty(t, span.Span.Values("vault.entity.id"), "%s: the forged span attribute survived", w.Name)
			}
		}
		t.Logf("%d spans through the container gateway in %s", sent, time.Since(t0).Round(time.Millisecond))
	})

	t.Run("the token read from Vault is rotated in the container", func(t *testing.T) {
		e.StandIn.Accept("ls-token-v1", "ls-token-v2")
		rotatedAt := time.Now()
		require.Equal(t, 2, e.Rotate("ls-token-v2"))
		require.Eventually(t, func() bool {
			v, _ := e.Gateway.Metric("otelcol_vaultauth_secret_version")
			return v == 2
		}, eventually, poll, "the gateway never picked up version 2; its metrics:\n%s", e.Gateway.MetricsText("otelcol_vaultauth"))
		t.Logf("rotation picked up after %s", time.Since(rotatedAt).Round(time.Millisecond))
		e.StandIn.Accept("ls-token-v2")
		sendEach(t, e, 10)
		awaitAll(t, e)
		failed, _ := e.Gateway.Metric("otelcol_exporter_send_failed_spans")
		assert.Zero(t, failed, "the stand-in rejected some of the gateway's exports")
	})

	t.Run("docker stop path: SIGTERM shuts the collector down cleanly", func(t *testing.T) {
		t0 := time.Now()
		gw.Stop()
		t.Logf("stopped in %s", time.Since(t0).Round(time.Millisecond))
		assert.Contains(t, gw.Logs(), "Shutdown complete", "log tail:\n%s", gw.LogTail(20))
		require.Eventually(t, func() bool {
			out, err := exec.Command("docker", "ps", "--all", "--quiet", "--filter", "name=^"+gw.ContainerName+"$").Output()
			return err == nil && strings.TrimSpace(string(out)) == ""
		}, 10*time.Second, poll, "container %s was not removed", gw.ContainerName)
	})
}
