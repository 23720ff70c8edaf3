package testbed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vaultlightstep/vaultlightstep/internal/promtext"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Collector is a running otelcol-vaultlightstep process.
type Collector struct {
	Name        string
	Configs     []string // merged in order, as several --config flags
	Env         map[string]string
	LogPath     string
	OTLPGRPC    string // host:port of its OTLP gRPC receiver
	OTLPHTTP    string // host:port of its OTLP HTTP receiver
	Health      string // host:port of the health endpoint
	ZPages      string // host:port for a zpages extension, if an overlay adds one
	MetricsPort int

	t      T
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartCollector runs the collector binary with config (and overlays merged
// over it) and env, on fresh loopback ports (OTLP, health endpoint, internal
// metrics, zpages), and waits until the health endpoint says it is ready. It is
// stopped when the test ends.
func StartCollector(t T, name, config string, env map[string]string, overlays ...string) *Collector {
	t.Helper()
	c := &Collector{Name: name, Configs: append([]string{config}, overlays...), t: t}
	c.LogPath = filepath.Join(t.TempDir(), name+".log")
	t.Cleanup(c.Stop)
	var err error
	for range 3 { // a port free a moment ago can be taken before the collector binds it
		c.assignPorts(env)
		if err = c.tryStart(); err == nil || !strings.Contains(c.Logs(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s did not become ready: %v\n--- last lines of its log ---\n%s", c.Name, err, c.LogTail(40))
	}
	return c
}

// assignPorts picks fresh loopback ports and sets the environment.
func (c *Collector) assignPorts(env map[string]string) {
	t := c.t
	c.ZPages, c.OTLPGRPC, c.OTLPHTTP, c.Health = FreeAddr(t), FreeAddr(t), FreeAddr(t), FreeAddr(t)
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	c.MetricsPort, _ = strconv.Atoi(port)
	c.Env = map[string]string{
		"OTLP_GRPC_ENDPOINT": c.OTLPGRPC, "OTLP_HTTP_ENDPOINT": c.OTLPHTTP,
		"HEALTH_ENDPOINT": c.Health, "METRICS_PORT": port, "ZPAGES_ENDPOINT": c.ZPages,
	}
	for k, v := range env {
		c.Env[k] = v
	}
}

// Healthy says whether the health endpoint answers 200 now.
func (c *Collector) Healthy() bool {
	resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + c.Health + "/")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Get fetches a path from one of the collector's loopback endpoints.
func (c *Collector) Get(url string) string {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return b.String()
}

// Restart starts the same collector again (after Kill), on the same ports.
func (c *Collector) Restart() {
	c.t.Helper()
	if err := c.tryStart(); err != nil {
		c.t.Fatalf("%s did not become ready: %v\n--- last lines of its log ---\n%s", c.Name, err, c.LogTail(40))
	}
}

// tryStart runs the process and waits for it to be ready.
func (c *Collector) tryStart() error {
	log, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatalf("%s: log file: %v", c.Name, err)
	}
	bin := CollectorBinary(c.t)
	var args []string
	for _, cfg := range c.Configs {
		args = append(args, "--config", "file:"+cfg)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range c.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = vaulttest.ChildProcAttr()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("%s: start: %v", c.Name, err)
	}
	c.cmd, c.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); _ = log.Close(); close(c.exited) }()
	if err := c.waitReady(60 * time.Second); err != nil {
		c.Stop()
		return err
	}
	return nil
}

func (c *Collector) waitReady(limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return errors.New("exited")
		default:
		}
		if resp, err := client.Get("http://" + c.Health + "/"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	return fmt.Errorf("not ready after %s", limit)
}

// Stop ends the collector gracefully (SIGTERM), killing it if it lingers.
func (c *Collector) Stop() { c.signal(syscall.SIGTERM, 20*time.Second) }

// Kill ends the collector at once (SIGKILL), as a crash would.
func (c *Collector) Kill() { c.signal(syscall.SIGKILL, 10*time.Second) }

func (c *Collector) signal(sig syscall.Signal, wait time.Duration) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, sig)
	select {
	case <-c.exited:
	case <-time.After(wait):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
}

// Metric sums the samples of an internal metric (Prometheus text format:
// the exact name, any labels), and says whether any was found.
func (c *Collector) Metric(name string) (float64, bool) { return c.MetricWhere(name) }

// MetricWhere is Metric over the samples whose labels include each of
// labels (`tenant="team-a"`), matched exactly.
func (c *Collector) MetricWhere(name string, labels ...string) (float64, bool) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.MetricsPort))
	if err != nil {
		return 0, false
	}
	defer func() { _ = resp.Body.Close() }()
	samples, err := promtext.Samples(resp.Body, name)
	if err != nil {
		return 0, false
	}
	want := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = strings.Trim(v, `"`)
	}
	var sum float64
	found := false
	for _, s := range samples {
		if s.Matches(want) {
			sum, found = sum+s.Value, true
		}
	}
	return sum, found
}

// MetricsText returns the lines of its internal metrics that start with prefix.
func (c *Collector) MetricsText(prefix string) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.MetricsPort))
	if err != nil {
		return err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String()
}

// Logs returns everything the collector wrote.
func (c *Collector) Logs() string {
	b, _ := os.ReadFile(c.LogPath)
	return string(b)
}

// LogTail returns its last n log lines.
func (c *Collector) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(c.Logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreeAddr returns a loopback host:port that was free a moment ago.
var FreeAddr = vaulttest.FreeAddr

// Validate runs `otelcol-vaultlightstep validate` on config with env and
// returns its output.
func Validate(t T, config string, env map[string]string) (string, error) {
	cmd := exec.Command(CollectorBinary(t), "validate", "--config", "file:"+config)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Pid is the collector's process id.
func (c *Collector) Pid() int { return c.cmd.Process.Pid }

// CPUSeconds is the CPU time (user + system) the collector process has used,
// from /proc (Linux, 100 clock ticks per second).
func (c *Collector) CPUSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}

// PeakRSS is the most memory the collector process has held resident
// since it started (VmHWM, from /proc; Linux), in bytes.
func (c *Collector) PeakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
