package helmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// configFile is one --config of a collector container, read from the
// ConfigMap mounted where it points.
type configFile struct {
	mountPath string // the path in the pod
	content   string
}

// configFiles resolves the container's --config=file:<path> arguments, in
// order, to the keys of the ConfigMap mounted at <path>'s directory.
func configFiles(t *testing.T, r *rendered, w workload) []configFile {
	t.Helper()
	c := w.container(t)
	var paths []string
	for i := 0; i < len(c.Args); i++ {
		a := c.Args[i]
		switch {
		case strings.HasPrefix(a, "--config="):
			paths = append(paths, strings.TrimPrefix(a, "--config="))
		case a == "--config" && i+1 < len(c.Args):
			paths = append(paths, c.Args[i+1])
			i++
		default:
			t.Errorf("%s %s: unexpected argument %q", w.kind, w.name, a)
		}
	}
	if len(paths) == 0 {
		t.Fatalf("%s %s: no --config arguments in %v", w.kind, w.name, c.Args)
	}
	var files []configFile
	for _, p := range paths {
		if !strings.HasPrefix(p, "file:") {
			t.Fatalf("%s %s: --config %q is not a file: URI", w.kind, w.name, p)
		}
		path := strings.TrimPrefix(p, "file:")
		dir, key := filepath.Dir(path), filepath.Base(path)
		var cm *corev1.ConfigMap
		for _, m := range c.VolumeMounts {
			if m.MountPath != dir {
				continue
			}
			v := volumeNamed(w.pod, m.Name)
			if v.ConfigMap == nil {
				t.Fatalf("%s %s: %s is mounted from volume %s, not a ConfigMap", w.kind, w.name, dir, m.Name)
			}
			cm = r.configMaps[v.ConfigMap.Name]
		}
		if cm == nil {
			t.Fatalf("%s %s: no ConfigMap is mounted at %s (for --config %s)", w.kind, w.name, dir, p)
		}
		content, ok := cm.Data[key]
		if !ok {
			t.Fatalf("%s %s: ConfigMap %s has no key %s (for --config %s)", w.kind, w.name, cm.Name, key, p)
		}
		files = append(files, configFile{mountPath: path, content: content})
	}
	return files
}

// podEnv is the container's environment as the collector process would see
// it: literal values as they are, values from the downward API, Secrets or
// ConfigMaps replaced by placeholders (none of them is read by validate).
func podEnv(t *testing.T, c corev1.Container) []string {
	t.Helper()
	if len(c.EnvFrom) != 0 {
		t.Fatalf("container %s: envFrom is not modelled by this test", c.Name)
	}
	env := make([]string, 0, len(c.Env))
	for _, e := range c.Env {
		v := e.Value
		if src := e.ValueFrom; src != nil {
			switch {
			case src.FieldRef != nil:
				v = "placeholder-field-" + src.FieldRef.FieldPath
			case src.ResourceFieldRef != nil:
				v = "1"
			case src.SecretKeyRef != nil:
				v = fmt.Sprintf("placeholder-secret-%s-%s", src.SecretKeyRef.Name, src.SecretKeyRef.Key)
			case src.ConfigMapKeyRef != nil:
				v = fmt.Sprintf("placeholder-configmap-%s-%s", src.ConfigMapKeyRef.Name, src.ConfigMapKeyRef.Key)
			default:
				t.Fatalf("container %s: env %s: unmodelled valueFrom %+v", c.Name, e.Name, src)
			}
		}
		if strings.Contains(v, "$(") {
			t.Fatalf("container %s: env %s=%q uses $(VAR) expansion, which this test does not model", c.Name, e.Name, v)
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}

// collectorArgs writes the container's config files under dir and returns
// the --config arguments pointing at them.
func collectorArgs(t *testing.T, files []configFile, dir string) []string {
	t.Helper()
	var args []string
	for _, f := range files {
		local := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(f.mountPath, "/")))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", "file:"+local)
	}
	return args
}

func runCollector(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(collectorBin(t), args...)
	// Only the pod's environment: nothing of the test's (a VAULT_ADDR here
	// must not make a config valid that is not in the pod).
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nenv: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(cmd.Path), strings.Join(args, " "), err, env, out, stderr.String())
	}
	return out
}

// TestCollectorValidate runs the built collector's `validate` on every
// rendered collector config, with the environment the pod spec sets, then
// reads the merged config back (`print-config`) and checks that the
// chart's overlay took effect as each value set says.
func TestCollectorValidate(t *testing.T) {
	collectorBin(t)
	for _, set := range valueSets(t) {
		t.Run(set.name, func(t *testing.T) {
			e := expectationsFor(t, set)
			r := render(t, set)
			agent, gateway := r.workloads(t)
			for _, w := range []workload{agent, gateway} {
				t.Run(w.component, func(t *testing.T) {
					c := w.container(t)
					env := podEnv(t, c)
					args := collectorArgs(t, configFiles(t, r, w), t.TempDir())
					runCollector(t, env, append([]string{"validate"}, args...)...)
					out := runCollector(t, env, append([]string{"print-config", "--mode", "redacted"}, args...)...)
					var cfg map[string]any
					if err := yaml.Unmarshal(out, &cfg); err != nil {
						t.Fatalf("print-config output: %v\n%s", err, out)
					}
					checkMergedConfig(t, e, w, c, cfg)
				})
			}
		})
	}
}

// get walks a decoded config along keys ("a", "b", 0 for list items).
func get(cfg any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := cfg.(map[string]any)
			if !ok {
				return nil
			}
			cfg = m[k]
		case int:
			l, ok := cfg.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			cfg = l[k]
		}
	}
	return cfg
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func checkMergedConfig(t *testing.T, e expect, w workload, c corev1.Container, cfg map[string]any) {
	t.Helper()
	want := func(what string, got any, want string) {
		t.Helper()
		if str(got) != want {
			t.Errorf("%s: %q, want %q", what, str(got), want)
		}
	}
	prom := get(cfg, "service", "telemetry", "metrics", "readers", 0, "pull", "exporter", "prometheus")
	want("metrics host", get(prom, "host"), "0.0.0.0")
	want("metrics port", get(prom, "port"), mustEnv(t, c, "METRICS_PORT"))
	checkHealth(t, c, cfg)
	want("otlp grpc endpoint", get(cfg, "receivers", "otlp", "protocols", "grpc", "endpoint"), mustEnv(t, c, "OTLP_GRPC_ENDPOINT"))

	if w.component == "agent" {
		self := get(cfg, "extensions", "vaultauth/self")
		want("vaultauth/self auth.method", get(self, "auth", "method"), e.agentAuth)
		want("vaultauth/self auth.role", get(self, "auth", "role"), e.agentRole)
		want("vaultauth/self auth.mount_path", get(self, "auth", "mount_path"), e.agentMount)
		want("vaultauth/self auth.token_file", get(self, "auth", "token_file"), e.agentTokenFile)
		want("vaultauth/self client.identity_token.role", get(self, "client", "identity_token", "role"), e.agentIdentityRole)
		checkAppRoleFiles(t, e.agentAuth, c, get(self, "auth"))
		exp := get(cfg, "exporters", "otlp_grpc/gateway")
		want("gateway exporter endpoint", get(exp, "endpoint"), mustEnv(t, c, "GATEWAY_ENDPOINT"))
		if e.tls {
			if b, _ := get(exp, "tls", "insecure").(bool); b {
				t.Error("TLS on, but the gateway exporter is insecure")
			}
			ca := str(get(exp, "tls", "ca_file"))
			m, _ := mountFor(c, "gateway-ca")
			if ca == "" || filepath.Dir(ca) != m.MountPath {
				t.Errorf("gateway exporter tls.ca_file %q is not in the gateway CA mount %q", ca, m.MountPath)
			}
			// Sent over TLS: the transport guard stays on.
			if b, ok := get(self, "client", "require_transport_security").(bool); ok && !b {
				t.Error("TLS on, but require_transport_security is off")
			}
		} else {
			if b, _ := get(exp, "tls", "insecure").(bool); !b {
				t.Error("TLS off, but the gateway exporter is not insecure")
			}
			// Plaintext to a non-loopback gateway: the guard must be off, or
			// every export is refused.
			if b, ok := get(self, "client", "require_transport_security").(bool); !ok || b {
				t.Errorf("TLS off: vaultauth/self client.require_transport_security is %v, want false", get(self, "client", "require_transport_security"))
			}
		}
		if e.agentExtraConfig {
			want("agent.config batch timeout", get(cfg, "processors", "batch", "timeout"), "1s")
		}
		checkWorkloadIdentity(t, e, cfg)
		return
	}

	ls := get(cfg, "extensions", "vaultauth/lightstep")
	want("vaultauth/lightstep auth.method", get(ls, "auth", "method"), e.gatewayAuth)
	want("vaultauth/lightstep auth.role", get(ls, "auth", "role"), e.gatewayRole)
	checkAppRoleFiles(t, e.gatewayAuth, c, get(ls, "auth"))
	want("vaultauth/lightstep vault.address", get(ls, "vault", "address"), e.gatewayVaultAddr)
	want("vaultauth/agents audience", get(cfg, "extensions", "vaultauth/agents", "server", "identity_token", "audience"), e.audience)
	want("file_storage/queue directory", get(cfg, "extensions", "file_storage/queue", "directory"), e.queueDir)
	want("lightstep exporter queue storage", get(cfg, "exporters", "otlp_grpc/lightstep", "sending_queue", "storage"), "file_storage/queue")
	if issuer, ok := envValue(c, "VAULT_ISSUER"); ok {
		want("vaultauth/agents issuers", get(cfg, "extensions", "vaultauth/agents", "server", "identity_token", "issuers", 0), issuer)
	}
	for _, proto := range []string{"grpc", "http"} {
		tls := get(cfg, "receivers", "otlp", "protocols", proto, "tls")
		if !e.tls {
			if tls != nil {
				t.Errorf("TLS off, but the %s receiver has tls %v", proto, tls)
			}
			continue
		}
		m, _ := mountFor(c, "gateway-tls")
		for _, k := range []string{"cert_file", "key_file"} {
			if f := str(get(tls, k)); f == "" || filepath.Dir(f) != m.MountPath {
				t.Errorf("%s receiver tls.%s %q is not in the certificate mount %q", proto, k, f, m.MountPath)
			}
		}
	}
	if got := fmt.Sprint(get(cfg, "processors", "vaultidentity", "vouchers")); got != strings.ReplaceAll(e.vouchers, `"`, "") {
		t.Errorf("gateway vaultidentity vouchers %s, want %s", got, e.vouchers)
	}
	if e.gwExtraConfig {
		want("gateway.config memory_limiter limit_percentage", get(cfg, "processors", "memory_limiter", "limit_percentage"), "70")
		want("gateway.config queue compaction directory", get(cfg, "extensions", "file_storage/queue", "compaction", "directory"), e.queueDir)
	}
}

// checkWorkloadIdentity: with agent.workloadIdentity the agent's
// receivers identify senders by their pods (vaultauth/workloads, logged in
// as vaultauth/self is) and vaultidentity stamps each request's identity;
// without it, the agent's own.
func checkWorkloadIdentity(t *testing.T, e expect, cfg map[string]any) {
	t.Helper()
	vi := get(cfg, "processors", "vaultidentity")
	if !e.workloadIdentity {
		if str(get(vi, "from")) != "extension" || get(cfg, "extensions", "vaultauth/workloads") != nil {
			t.Errorf("workload identity off, but vaultidentity from %q, vaultauth/workloads %v", str(get(vi, "from")), get(cfg, "extensions", "vaultauth/workloads"))
		}
		return
	}
	w := get(cfg, "extensions", "vaultauth/workloads")
	for what, pair := range map[string][2]any{
		"vaultauth/workloads auth.method":   {get(w, "auth", "method"), e.agentAuth},
		"vaultauth/workloads auth.role":     {get(w, "auth", "role"), e.agentRole},
		"kubernetes_pods.node_name":         {get(w, "server", "kubernetes_pods", "node_name"), "placeholder-field-spec.nodeName"},
		"kubernetes_pods.alias_name_source": {get(w, "server", "kubernetes_pods", "alias_name_source"), e.aliasNameSource},
		"kubernetes_pods.unidentified":      {get(w, "server", "kubernetes_pods", "unidentified"), e.unidentified},
		"vaultidentity from":                {get(vi, "from"), "auth"},
		"vaultidentity on_missing":          {get(vi, "on_missing"), map[string]string{"pass": "pass", "reject": "reject"}[e.unidentified]},
		"otlp grpc receiver authenticator":  {get(cfg, "receivers", "otlp", "protocols", "grpc", "auth", "authenticator"), "vaultauth/workloads"},
		"otlp http receiver authenticator":  {get(cfg, "receivers", "otlp", "protocols", "http", "auth", "authenticator"), "vaultauth/workloads"},
	} {
		if str(pair[0]) != str(pair[1]) {
			t.Errorf("%s: %q, want %q", what, str(pair[0]), str(pair[1]))
		}
	}
	if !strings.Contains(fmt.Sprint(get(cfg, "service", "extensions")), "vaultauth/workloads") {
		t.Errorf("service.extensions %v lacks vaultauth/workloads", get(cfg, "service", "extensions"))
	}
}

// checkAppRoleFiles: with AppRole, the role and secret id files are the ones
// the pod mounts; with another method, the example's AppRole files are gone.
func checkAppRoleFiles(t *testing.T, method string, c corev1.Container, auth any) {
	t.Helper()
	for key, env := range map[string]string{"role_id_file": "VAULT_ROLE_ID_FILE", "secret_id_file": "VAULT_SECRET_ID_FILE"} {
		got := str(get(auth, key))
		if method != "approle" {
			if got != "" {
				t.Errorf("method %s, but auth.%s is %q", method, key, got)
			}
			continue
		}
		if want := mustEnv(t, c, env); got != want || want == "" {
			t.Errorf("auth.%s %q, want %s=%q", key, got, env, want)
		}
	}
}

// checkHealth: the config's health extension (health_check, or
// healthcheckv2 with its HTTP status) listens on HEALTH_ENDPOINT and serves
// the status where the readiness probe reads it.
func checkHealth(t *testing.T, c corev1.Container, cfg map[string]any) {
	t.Helper()
	var endpoint, path, id string
	exts, _ := get(cfg, "service", "extensions").([]any)
	for _, x := range exts {
		name := str(x)
		ext := get(cfg, "extensions", name)
		switch typ, _, _ := strings.Cut(name, "/"); typ {
		case "health_check":
			id, endpoint, path = name, str(get(ext, "endpoint")), str(get(ext, "path"))
		case "healthcheckv2":
			id, endpoint, path = name, str(get(ext, "http", "endpoint")), str(get(ext, "http", "status", "path"))
			if d, ok := envValue(c, "HEALTH_RECOVERY_DURATION"); ok {
				got, err1 := time.ParseDuration(str(get(ext, "component_health", "recovery_duration")))
				want, err2 := time.ParseDuration(d)
				if err1 != nil || err2 != nil || got != want {
					t.Errorf("%s recovery_duration %v (%v), HEALTH_RECOVERY_DURATION=%q (%v)", name, got, err1, d, err2)
				}
			}
		}
	}
	if id == "" {
		t.Fatalf("no health_check or healthcheckv2 extension in service.extensions %v", exts)
	}
	if want := mustEnv(t, c, "HEALTH_ENDPOINT"); endpoint != want {
		t.Errorf("%s endpoint %q, want HEALTH_ENDPOINT=%q", id, endpoint, want)
	}
	if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != path {
		t.Errorf("readiness probe reads %q, %s serves the status at %q", p.HTTPGet.Path, id, path)
	}
}
