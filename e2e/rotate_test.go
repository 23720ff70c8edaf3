package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// buildRotateCommand builds cmd/vaultlightstep from this tree into
// t.TempDir(), so the test never runs a stale bin/vaultlightstep.
func buildRotateCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vaultlightstep")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vaultlightstep")
	cmd.Dir = testbed.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the rotation command does not build (go build ./cmd/vaultlightstep): %v\n%s", err, out)
	}
	return bin
}

// rotRun is one run of the rotation command, its lines timestamped.
type rotRun struct {
	code   int
	lines  []rotLine // stdout
	stderr string
}

type rotLine struct {
	at   time.Time
	text string
}

func (r rotRun) stdout() string {
	var b strings.Builder
	for _, l := range r.lines {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

func (r rotRun) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout(), r.stderr)
}

// line returns the first stdout line starting with prefix.
func (r rotRun) line(prefix string) (rotLine, bool) {
	for _, l := range r.lines {
		if strings.HasPrefix(l.text, prefix) {
			return l, true
		}
	}
	return rotLine{}, false
}

// runRotCommand runs the command with only PATH, HOME and env in its
// environment; onExit runs the moment it has exited, before anything else.
func runRotCommand(t *testing.T, bin string, env map[string]string, onExit func(code int), args ...string) rotRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var run rotRun
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		run.lines = append(run.lines, rotLine{at: time.Now(), text: sc.Text()})
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		run.code = exitErr.ExitCode()
	default:
		t.Fatalf("run the rotation command: %v", err)
	}
	if onExit != nil {
		onExit(run.code)
	}
	run.stderr = stderr.String()
	return run
}

var rotWroteVersion = regexp.MustCompile(`^wrote version (\d+) of `)

// rotWrittenVersion is the version the command says it wrote.
func rotWrittenVersion(t *testing.T, r rotRun) (int, time.Time) {
	t.Helper()
	l, ok := r.line("wrote version ")
	require.True(t, ok, "the command wrote no version:\n%s", r)
	v, err := strconv.Atoi(rotWroteVersion.FindStringSubmatch(l.text)[1])
	require.NoError(t, err)
	return v, l.at
}

func rotMetricsURL(gw *testbed.Collector) string {
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", gw.MetricsPort)
}

func rotGatewayVersion(gw *testbed.Collector) float64 {
	v, _ := gw.MetricWhere("otelcol_vaultauth_secret_version", `extension="vaultauth/lightstep"`)
	return v
}

// rotWriterArgs are the command's Vault login flags as lightstep-token-writer,
// the AppRole role of whoever rotates the token.
func rotWriterArgs(t *testing.T, v *vaulttest.Server) []string {
	t.Helper()
	w := testbed.AppRoleCredentials(t, v, "lightstep-token-writer")
	return []string{"--approle-role-id-file", w.RoleIDFile, "--approle-secret-id-file", w.SecretIDFile}
}

func rotTokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "new-lightstep-token")
	require.NoError(t, os.WriteFile(p, []byte(token+"\n"), 0o600))
	return p
}

// One command rotates the token across three gateways under load: it says
// the old token can go only once all three send the new one, and
// withdrawing the old token then loses nothing.
func TestRotateCommandAcrossGateways(t *testing.T) {
	d := testbed.Start(t, testbed.Options{Gateways: 3, Workloads: []string{"a", "b", "c", "d"}, RefreshInterval: "2s"})
	login := rotWriterArgs(t, d.Vault)
	bin := buildRotateCommand(t)

	var stop atomic.Bool
	var wg sync.WaitGroup
	t.Cleanup(func() { stop.Store(true); wg.Wait() }) // also when an assertion fails
	for _, s := range d.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000 && !stop.Load(); i++ { // bounded: stopped once the rotation is done
				s.Send(batch)
				time.Sleep(5 * time.Millisecond) // a steady rate, not a flood
			}
		}()
	}
	warm := d.Sink.Count()
	require.Eventually(t, func() bool { return d.Sink.Count() > warm+200 }, eventually, poll,
		"nothing arrives before the rotation\n%s", d.Gateway.LogTail(20))
	var urls []string
	for _, gw := range d.Gateways {
		require.Eventually(t, func() bool { return rotGatewayVersion(gw) == 1 }, eventually, poll,
			"%s never sent version 1\n%s", gw.Name, gw.LogTail(20))
		urls = append(urls, rotMetricsURL(gw))
	}

	// Lightstep accepts the new token beside the old one while the command runs.
	d.StandIn.Accept("ls-token-v1", "ls-token-v2")
	atExit := map[string]float64{}
	started := time.Now()
	run := runRotCommand(t, bin, map[string]string{"VAULT_ADDR": d.Vault.Addr}, func(code int) {
		if code == 0 { // what the gateways send the moment it says "safe"
			for _, gw := range d.Gateways {
				atExit[gw.Name] = rotGatewayVersion(gw)
			}
		}
	}, append([]string{"rotate", "--path", "secret/data/lightstep/prod", "--token-file", rotTokenFile(t, "ls-token-v2"),
		"--collectors", strings.Join(urls, ","), "--interval", "200ms", "--timeout", "2m"}, login...)...)
	require.Equal(t, 0, run.code, "%s", run)
	version, writtenAt := rotWrittenVersion(t, run)
	require.Equal(t, 2, version)
	for _, gw := range d.Gateways {
		assert.EqualValues(t, version, atExit[gw.Name], "%s when the command said safe", gw.Name)
	}
	last := run.lines[len(run.lines)-1]
	require.Equal(t, "all 3 collectors send version 2: the old token can be deactivated", last.text, "%s", run)
	safeAfter := last.at.Sub(writtenAt)

	// The end of the overlap: Lightstep accepts only the new token.
	d.StandIn.Accept("ls-token-v2")
	after := d.Sink.Count()
	require.Eventually(t, func() bool { return d.Sink.Count() > after+500 }, eventually, poll,
		"nothing arrives after the old token was withdrawn\n%s", d.Gateway.LogTail(20))
	time.Sleep(2 * time.Second) // load goes on a while on the new token alone
	stop.Store(true)
	wg.Wait()

	sent := awaitAll(t, d)
	assert.Zero(t, d.Lost(batch), "spans lost")
	for _, s := range d.Senders {
		assert.Zero(t, s.Errors(), "%s: requests refused by its agent", s.Workload)
	}
	var exported float64
	for _, gw := range d.Gateways {
		failed, _ := gw.Metric("otelcol_exporter_send_failed_spans")
		assert.Zero(t, failed, "%s: the stand-in rejected some of its exports", gw.Name)
		n, found := gw.Metric("otelcol_exporter_sent_spans")
		assert.True(t, found, "%s exports no exporter metrics", gw.Name)
		assert.Positive(t, n, "%s exported nothing: agents are spread across the gateways", gw.Name)
		exported += n
	}
	assert.GreaterOrEqual(t, exported, float64(sent))
	assert.NotContains(t, run.String(), "ls-token-v", "the command printed a Lightstep token")
	t.Logf("rotate command: %s in all; version 2 written, all 3 gateways confirmed %s after the write (refresh_interval 2s, scrape every 200ms); "+
		"%d spans sent by 4 workloads under load, %d arrived, 0 lost, 0 failed exports, %d duplicates\ncommand output:\n%s",
		last.at.Sub(started).Round(time.Millisecond), safeAfter.Round(time.Millisecond), sent, d.Sink.Count(), d.Sink.Duplicates(), run.stdout())
}

// A gateway that cannot reach Vault keeps the old token: the command must
// not say the old token can go, and must name that gateway.
func TestRotateCommandGatewayCutFromVault(t *testing.T) {
	bin := buildRotateCommand(t)
	d := testbed.Start(t, testbed.Options{Gateways: 2, Workloads: []string{"a"}})
	// The third gateway reaches Vault through a proxy of its own.
	creds := testbed.AppRoleCredentials(t, d.Vault, "otel-gateway")
	proxy := vaulttest.NewProxy(t, d.Vault.HostPort())
	cut := testbed.StartCollector(t, "gateway-2", testbed.Example("gateway.yaml"), map[string]string{
		"VAULT_ADDR":                 proxy.Addr,
		"VAULT_ISSUER":               d.Proxy.Addr + "/v1/identity/oidc", // the issuer Vault names
		"VAULT_ROLE_ID_FILE":         creds.RoleIDFile,
		"VAULT_SECRET_ID_FILE":       creds.SecretIDFile,
		"AGENT_AUDIENCE":             d.Audience,
		"QUEUE_DIR":                  filepath.Join(t.TempDir(), "queue"),
		"LIGHTSTEP_ENDPOINT":         d.StandIn.OTLPGRPC,
		"LIGHTSTEP_INSECURE":         "true",
		"LIGHTSTEP_REFRESH_INTERVAL": "500ms",
	})
	gateways := append(append([]*testbed.Collector(nil), d.Gateways...), cut)
	var urls []string
	for _, gw := range gateways {
		require.Eventually(t, func() bool { return rotGatewayVersion(gw) == 1 }, eventually, poll,
			"%s never sent version 1\n%s", gw.Name, gw.LogTail(20))
		urls = append(urls, rotMetricsURL(gw))
	}
	proxy.SetDown(true)
	d.StandIn.Accept("ls-token-v1", "ls-token-v2")

	env := map[string]string{"VAULT_ADDR": d.Vault.Addr}
	started := time.Now()
	run := runRotCommand(t, bin, env, nil, append([]string{"rotate", "--path", "secret/data/lightstep/prod", "--token-file", rotTokenFile(t, "ls-token-v2"),
		"--collectors", strings.Join(urls, ","), "--interval", "200ms", "--timeout", "5s"}, rotWriterArgs(t, d.Vault)...)...)
	took := time.Since(started)
	require.Equal(t, 4, run.code, "written, not confirmed: %s", run)
	version, _ := rotWrittenVersion(t, run)
	require.Equal(t, 2, version)
	assert.NotContains(t, run.String(), "can be deactivated")
	assert.Contains(t, run.stdout(), "2/3 collectors send version 2: "+rotMetricsURL(cut)+" still on 1")
	assert.Contains(t, run.stderr, "version 2 is written, but not confirmed after 5s: 2/3 collectors send version 2; do NOT deactivate the old token")
	assert.Contains(t, run.stderr, "  "+rotMetricsURL(cut)+" still on 1\n")
	for _, gw := range d.Gateways {
		assert.NotContains(t, run.stderr, rotMetricsURL(gw)+" still", "%s switched, yet is named", gw.Name)
		assert.EqualValues(t, 2, rotGatewayVersion(gw), gw.Name)
	}
	assert.EqualValues(t, 1, rotGatewayVersion(cut), "the cut gateway still sends version 1")
	assert.Less(t, took, 30*time.Second)

	// Once it reaches Vault again, `wait` (no second write) says it is safe.
	proxy.SetDown(false)
	waited := runRotCommand(t, bin, nil, nil, "wait", "--version", "2", "--collectors", strings.Join(urls, ","), "--interval", "200ms", "--timeout", "1m")
	require.Equal(t, 0, waited.code, "%s", waited)
	assert.Equal(t, "all 3 collectors send version 2: the old token can be deactivated", waited.lines[len(waited.lines)-1].text)
	t.Logf("gateway cut from Vault: the command exited %d after %s naming %s (still on 1); after Vault came back, `wait` confirmed all 3 on version 2\ncommand stderr:\n%s",
		run.code, took.Round(time.Millisecond), rotMetricsURL(cut), run.stderr)
}
