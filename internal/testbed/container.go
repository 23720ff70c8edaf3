package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Paths inside the image (deploy/image/Dockerfile).
const (
	// ContainerConfig is where the image's default command reads its config.
	ContainerConfig = "/etc/otelcol-vaultlightstep/config.yaml"
	// ContainerDataDir is the directory the image's user (65532) may write:
	// file_storage's directory (the gateway's QUEUE_DIR) goes under it.
	ContainerDataDir = "/var/lib/otelcol-vaultlightstep"
	// ContainerSecretsDir is where StartContainer mounts the files it is given.
	ContainerSecretsDir = "/run/secrets/vaultlightstep"
)

// Image is the image `make image` builds (tagged :latest), or $VAULTLIGHTSTEP_IMAGE.
func Image() string {
	if s := os.Getenv("VAULTLIGHTSTEP_IMAGE"); s != "" {
		return s
	}
	return "otelcol-vaultlightstep:latest"
}

// Container is a collector run from the image by `docker run --rm
// --network host`: a Collector whose process is the docker client, which
// passes SIGTERM on to the collector in the container (Stop). Its Kill and
// Restart act on the container; the embedded Collector's would act on the
// docker client (and Restart would start the binary).
type Container struct {
	*Collector
	Image         string
	ContainerName string

	args []string // docker run ...
}

// StartContainer runs image as the collector name, the way StartCollector
// runs the binary: the same fresh loopback ports and environment variables
// (with host networking its loopback is the host's), ready when its health
// endpoint says so, stopped when the test ends (and its container removed).
// config is mounted read-only at ContainerConfig, overlays beside it. files
// maps environment variables to host files (credentials): each is copied,
// readable by the image's non-root user, into a directory mounted read-only
// at ContainerSecretsDir, and the variable names the copy, as a user mounts
// a secret.
func StartContainer(t T, image, name, config string, env, files map[string]string, overlays ...string) *Container {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("docker not found: `make image-test` starts a daemon and builds the image")
	}
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", image).CombinedOutput(); err != nil {
		t.Fatalf("image %s: %v: %s (run `make image`)", image, err, out)
	}
	c := &Container{
		Collector: &Collector{
			Name: name, Configs: append([]string{config}, overlays...), Env: map[string]string{}, t: t,
			ZPages:   FreeAddr(t),
			OTLPGRPC: FreeAddr(t), OTLPHTTP: FreeAddr(t), Health: FreeAddr(t),
		},
		Image:         image,
		ContainerName: "vaultlightstep-" + name + "-" + randomHex(4),
	}
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	c.MetricsPort, _ = strconv.Atoi(port)
	c.Env["OTLP_GRPC_ENDPOINT"], c.Env["OTLP_HTTP_ENDPOINT"] = c.OTLPGRPC, c.OTLPHTTP
	c.Env["HEALTH_ENDPOINT"], c.Env["METRICS_PORT"], c.Env["ZPAGES_ENDPOINT"] = c.Health, port, c.ZPages
	for k, v := range env {
		c.Env[k] = v
	}
	c.LogPath = filepath.Join(t.TempDir(), name+".log")

	c.args = []string{"run", "--rm", "--name", c.ContainerName, "--network", "host",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges"}
	command := c.mountConfigs(t)
	if len(files) > 0 {
		c.mountFiles(t, files)
	}
	for _, k := range sortedKeys(c.Env) {
		c.args = append(c.args, "--env", k) // the value comes from the docker client's environment
	}
	c.args = append(append(c.args, image), command...)

	t.Cleanup(func() {
		c.Stop()
		c.remove()
	})
	c.run()
	return c
}

// mountConfigs mounts the configs read-only and returns the command's
// --config flags for them.
func (c *Container) mountConfigs(t T) []string {
	var command []string
	for i, cfg := range c.Configs {
		target := ContainerConfig
		if i > 0 {
			target = filepath.Join(filepath.Dir(ContainerConfig), fmt.Sprintf("overlay-%d.yaml", i))
		}
		abs, err := filepath.Abs(cfg)
		if err != nil {
			t.Fatalf("%s: config %s: %v", c.Name, cfg, err)
		}
		c.args = append(c.args, "--volume", abs+":"+target+":ro")
		command = append(command, "--config", "file:"+target)
	}
	return command
}

// mountFiles copies files (env name -> path) into one directory mounted
// read-only, and points each env name at its copy.
func (c *Container) mountFiles(t T, files map[string]string) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // the mount's root, as the container's user sees it
		t.Fatalf("%s: %v", c.Name, err)
	}
	for _, k := range sortedKeys(files) {
		base := filepath.Base(files[k])
		b, err := os.ReadFile(files[k])
		if err != nil {
			t.Fatalf("%s: %s: %v", c.Name, k, err)
		}
		if _, err := os.Stat(filepath.Join(dir, base)); err == nil {
			t.Fatalf("%s: two files named %s", c.Name, base)
		}
		if err := os.WriteFile(filepath.Join(dir, base), b, 0o644); err != nil { // readable by the container's user (65532)
			t.Fatalf("%s: %v", c.Name, err)
		}
		c.Env[k] = ContainerSecretsDir + "/" + base
	}
	c.args = append(c.args, "--volume", dir+":"+ContainerSecretsDir+":ro")
}

// Kill ends the container at once (SIGKILL to the collector), as a crash would.
func (c *Container) Kill() {
	_ = exec.Command("docker", "kill", "--signal", "KILL", c.ContainerName).Run()
	c.signal(syscall.SIGKILL, 10*time.Second) // the docker client, which exits with it
}

// Restart runs the container again (after Kill or Stop), on the same ports.
func (c *Container) Restart() {
	c.t.Helper()
	c.remove()
	c.run()
}

// ProcessIDs returns the real user and group ids of the collector's process
// in the container, as the host's /proc shows them.
func (c *Container) ProcessIDs() (uid, gid string, err error) {
	out, err := exec.Command("docker", "inspect", "--format", "{{.State.Pid}}", c.ContainerName).Output()
	if err != nil {
		return "", "", fmt.Errorf("docker inspect %s: %w", c.ContainerName, err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(out)) + "/status")
	if err != nil {
		return "", "", err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "Uid:":
			uid = f[1]
		case len(f) > 1 && f[0] == "Gid:":
			gid = f[1]
		}
	}
	return uid, gid, nil
}

func (c *Container) run() {
	log, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatalf("%s: log file: %v", c.Name, err)
	}
	cmd := exec.Command("docker", c.args...)
	cmd.Env = os.Environ()
	for k, v := range c.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = vaulttest.ChildProcAttr()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("%s: docker run: %v", c.Name, err)
	}
	c.cmd, c.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); _ = log.Close(); close(c.exited) }()
	if err := c.waitReady(60 * time.Second); err != nil {
		c.Stop()
		c.remove()
		c.t.Fatalf("%s (container %s) did not become ready: %v\n--- last lines of its log ---\n%s",
			c.Name, c.ContainerName, err, c.LogTail(40))
	}
}

// remove removes the container if it is still there (--rm removes it once it exits).
func (c *Container) remove() {
	_ = exec.Command("docker", "rm", "--force", c.ContainerName).Run()
}

// StartWithGatewayImage is Start (one gateway, one Lightstep token) with the
// gateway run from image by StartContainer instead of the binary: the same
// Vault, Lightstep stand-in, sink, agents and senders; the gateway gets
// examples/gateway.yaml (and o.GatewayOverlay) mounted, the environment Start
// gives it, its AppRole credential files mounted, and its persistent queue in
// the image's data directory. Teams and Gateways > 1 are not supported.
func StartWithGatewayImage(t T, image string, o Options) (*Deployment, *Container) {
	t.Helper()
	if len(o.Teams) > 0 || o.Gateways > 1 {
		t.Fatalf("StartWithGatewayImage: one gateway with one token only")
	}
	if len(o.Workloads) == 0 {
		o.Workloads = []string{"payments", "checkout"}
	}
	if o.RefreshInterval == "" {
		o.RefreshInterval = "500ms"
	}
	if o.FirstToken == "" {
		o.FirstToken = "ls-token-v1"
	}
	d := &Deployment{Vault: vaulttest.Start(t)}
	d.Proxy = vaulttest.NewCountingProxy(t, d.Vault)
	d.Audience = ConfigureVault(t, d.Vault, d.Proxy.Addr)
	d.Rotate = TokenWriter(t, d.Vault)
	d.Rotate(o.FirstToken)
	d.Sink = StartSink(t)
	d.StandIn = StartStandIn(t, d.Sink, o.FirstToken)

	gw := AppRoleCredentials(t, d.Vault, "otel-gateway")
	gateway := StartContainer(t, image, "gateway", Example("gateway.yaml"), map[string]string{
		"VAULT_ADDR":                 d.Proxy.Addr,
		"AGENT_AUDIENCE":             d.Audience,
		"QUEUE_DIR":                  ContainerDataDir + "/queue",
		"LIGHTSTEP_ENDPOINT":         d.StandIn.OTLPGRPC,
		"LIGHTSTEP_INSECURE":         "true",
		"LIGHTSTEP_REFRESH_INTERVAL": o.RefreshInterval,
	}, map[string]string{
		"VAULT_ROLE_ID_FILE":   gw.RoleIDFile,
		"VAULT_SECRET_ID_FILE": gw.SecretIDFile,
	}, overlay(o.GatewayOverlay)...)
	d.Gateway, d.Gateways = gateway.Collector, []*Collector{gateway.Collector}

	for i, name := range o.Workloads {
		w := NewWorkload(t, d.Vault, name)
		agent := StartCollector(t, "agent-"+name, Example("agent.yaml"), map[string]string{
			"VAULT_ADDR":           d.Proxy.Addr,
			"VAULT_ROLE_ID_FILE":   w.RoleIDFile,
			"VAULT_SECRET_ID_FILE": w.SecretIDFile,
			"GATEWAY_ENDPOINT":     d.Gateway.OTLPGRPC,
			"GATEWAY_INSECURE":     "true",
		}, overlay(o.AgentOverlay)...)
		d.Agents = append(d.Agents, agent)
		d.Workloads = append(d.Workloads, w)
		d.Senders = append(d.Senders, NewSender(t, name, i, agent.OTLPGRPC))
	}
	return d, gateway
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
