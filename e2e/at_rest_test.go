package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
)

// With include_metadata the receiver copies every request header into the
// request's client metadata, and the persistent queue writes that metadata
// to disk with the data. Attack (finding 6 of issue 19): the agents'
// identity JWTs (Vault tokens, in token_lookup mode) then lay in the queue
// directory, each a credential whoever reads the disk could replay until it
// expires. The authenticator takes the credential out of the metadata.
func TestNoCredentialAtRestInTheQueue(t *testing.T) {
	d := testbed.Start(t, testbed.Options{GatewayOverlay: testbed.Testdata("overlays/gateway-include-metadata.yaml")})
	sendEach(t, d, 5)
	awaitAll(t, d)
	d.StandIn.Kill() // Lightstep unreachable: what is sent from now on stays in the queue
	sendEach(t, d, 20)
	require.Eventually(t, func() bool { n, _ := d.Gateway.Metric("otelcol_exporter_queue_size"); return n > 0 }, eventually, poll,
		"nothing queued\n%s", d.Gateway.LogTail(20))

	var disk strings.Builder
	files := 0
	require.NoError(t, filepath.WalkDir(d.Gateway.Env["QUEUE_DIR"], func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files++
		disk.Write(b)
		return err
	}))
	onDisk := disk.String()
	require.Contains(t, onDisk, "user-agent", "the queue holds no client metadata: the test proves nothing")
	jwts := strings.Count(onDisk, "eyJ") // every JWT starts with the base64 of `{"`
	assert.Zero(t, jwts, "identity tokens at rest in the gateway's queue")
	t.Logf("queue directory: %d files, %d bytes, client metadata present, %d identity tokens", files, disk.Len(), jwts)
}
