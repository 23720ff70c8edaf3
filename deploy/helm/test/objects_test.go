package helmtest

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// workload is one collector pod template of the chart.
type workload struct {
	kind      string // DaemonSet or StatefulSet
	name      string
	component string // agent or gateway
	example   string // the example config it runs: examples/<example>
	labels    map[string]string
	selector  map[string]string
	pod       corev1.PodSpec
	annots    map[string]string
}

func (w workload) container(t *testing.T) corev1.Container {
	t.Helper()
	for _, c := range w.pod.Containers {
		if c.Name == w.component {
			return c
		}
	}
	t.Fatalf("%s %s: no container named %q", w.kind, w.name, w.component)
	return corev1.Container{}
}

// workloads are the agent DaemonSet and the gateway StatefulSet, each of
// which the chart must render exactly once.
func (r *rendered) workloads(t *testing.T) (agent, gateway workload) {
	t.Helper()
	if len(r.daemonSets) != 1 {
		t.Fatalf("%s: want exactly one DaemonSet (the agents), got %v", r.set.name, sortedKeys(r.daemonSets))
	}
	if len(r.statefulSets) != 1 {
		t.Fatalf("%s: want exactly one StatefulSet (the gateway), got %v", r.set.name, sortedKeys(r.statefulSets))
	}
	for _, ds := range r.daemonSets {
		agent = workload{kind: "DaemonSet", name: ds.Name, component: "agent", example: "agent.yaml",
			labels: ds.Spec.Template.Labels, selector: ds.Spec.Selector.MatchLabels, pod: ds.Spec.Template.Spec,
			annots: ds.Spec.Template.Annotations}
	}
	for _, ss := range r.statefulSets {
		gateway = workload{kind: "StatefulSet", name: ss.Name, component: "gateway", example: "gateway.yaml",
			labels: ss.Spec.Template.Labels, selector: ss.Spec.Selector.MatchLabels, pod: ss.Spec.Template.Spec,
			annots: ss.Spec.Template.Annotations}
	}
	return agent, gateway
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func mustEnv(t *testing.T, c corev1.Container, name string) string {
	t.Helper()
	v, ok := envValue(c, name)
	if !ok {
		t.Fatalf("container %s: no env %s", c.Name, name)
	}
	return v
}

func containerPort(t *testing.T, c corev1.Container, name string) corev1.ContainerPort {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("container %s: no port named %q", c.Name, name)
	return corev1.ContainerPort{}
}

// resolvePort is the container port number a probe or Service port names.
func resolvePort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	return containerPort(t, c, p.StrVal).ContainerPort
}

// TestRenderedObjects checks, for each value set, what a working install
// relies on: that the pieces reference each other correctly, listen where
// they are reached, and run locked down.
func TestRenderedObjects(t *testing.T) {
	for _, set := range valueSets(t) {
		t.Run(set.name, func(t *testing.T) {
			e := expectationsFor(t, set)
			r := render(t, set)
			agent, gateway := r.workloads(t)
			if want := e.fullname + "-agent"; agent.name != want {
				t.Errorf("DaemonSet %s, want %s", agent.name, want)
			}
			if want := e.fullname + "-gateway"; gateway.name != want {
				t.Errorf("StatefulSet %s, want %s", gateway.name, want)
			}
			for _, w := range []workload{agent, gateway} {
				checkWorkload(t, r, e, w)
			}
			checkAgent(t, r, e, agent)
			checkGateway(t, r, e, gateway)
			checkServiceAccounts(t, r, e)
			checkTLSSecret(t, r, e)
			if e.generatedCert {
				host, _, err := net.SplitHostPort(mustEnv(t, agent.container(t), "GATEWAY_ENDPOINT"))
				if err != nil {
					t.Fatal(err)
				}
				checkGeneratedCert(t, r.secrets[e.fullname+"-gateway-tls"], host,
					e.fullname+"-gateway."+namespace+".svc", e.fullname+"-gateway-headless."+namespace+".svc")
			}
		})
	}
}

func checkWorkload(t *testing.T, r *rendered, e expect, w workload) {
	t.Helper()
	c := w.container(t)
	where := w.kind + " " + w.name

	// The selector selects the pod template.
	if len(w.selector) == 0 || !labels.SelectorFromSet(w.selector).Matches(labels.Set(w.labels)) {
		t.Errorf("%s: selector %v does not match its pod labels %v", where, w.selector, w.labels)
	}

	// Image, and its binary (whatever the image's entrypoint).
	if !strings.Contains(c.Image, "otelcol-vaultlightstep") {
		t.Errorf("%s: image %q is not otelcol-vaultlightstep", where, c.Image)
	}
	if !slices.Equal(c.Command, []string{"/otelcol-vaultlightstep"}) {
		t.Errorf("%s: command %q, want [/otelcol-vaultlightstep]", where, c.Command)
	}

	// Security context: non-root, read-only root, no capabilities, no escalation.
	psc := w.pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", where)
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext.runAsUser is not a non-root uid", where)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", where)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: container has no securityContext", where)
	default:
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: container runAsNonRoot is not true", where)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: container readOnlyRootFilesystem is not true", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: container allowPrivilegeEscalation is not false", where)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: container is privileged", where)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
			t.Errorf("%s: capabilities %+v, want drop [ALL] and no add", where, sc.Capabilities)
		}
	}
	if w.pod.HostNetwork || w.pod.HostPID || w.pod.HostIPC {
		t.Errorf("%s: uses the host's network, PID or IPC namespace", where)
	}

	// Resources.
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("%s: no cpu/memory requests: %v", where, c.Resources.Requests)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: no memory limit (memory_limiter's limit_percentage is a share of it)", where)
	}

	// Listening addresses: every endpoint the config reads is bound to all
	// interfaces, on the port the pod declares.
	for env, port := range map[string]string{
		"OTLP_GRPC_ENDPOINT": "otlp-grpc", "OTLP_HTTP_ENDPOINT": "otlp-http", "HEALTH_ENDPOINT": "health",
	} {
		host, p, err := net.SplitHostPort(mustEnv(t, c, env))
		if err != nil || host != "0.0.0.0" {
			t.Errorf("%s: %s=%q, want 0.0.0.0:<port>", where, env, mustEnv(t, c, env))
			continue
		}
		if want := strconv.Itoa(int(containerPort(t, c, port).ContainerPort)); p != want {
			t.Errorf("%s: %s port %s, but container port %s is %s", where, env, p, port, want)
		}
	}
	// Metrics: not bound to loopback (the example's default), on the
	// declared metrics port, and announced to scrapers on that port.
	metricsHost := mustEnv(t, c, "METRICS_HOST")
	if ip := net.ParseIP(metricsHost); metricsHost == "" || strings.EqualFold(metricsHost, "localhost") || (ip != nil && ip.IsLoopback()) {
		t.Errorf("%s: METRICS_HOST=%q: a scraper in another pod cannot reach it", where, metricsHost)
	}
	metricsPort := mustEnv(t, c, "METRICS_PORT")
	if want := strconv.Itoa(int(containerPort(t, c, "metrics").ContainerPort)); metricsPort != want {
		t.Errorf("%s: METRICS_PORT=%s, container port metrics=%s", where, metricsPort, want)
	}
	if e.podScrape {
		if w.annots["prometheus.io/scrape"] != "true" || w.annots["prometheus.io/port"] != metricsPort {
			t.Errorf("%s: pod scrape annotations %v, want prometheus.io/scrape=true, port %s", where, w.annots, metricsPort)
		}
	} else if _, ok := w.annots["prometheus.io/scrape"]; ok {
		t.Errorf("%s: pod scrape annotations present, but the Services carry them (each pod would be scraped twice)", where)
	}
	if w.annots["checksum/config"] == "" {
		t.Errorf("%s: no checksum/config annotation: a config change would not roll the pods", where)
	}

	// Probes on the health extension's port: readiness reads its status
	// over HTTP (the path is checked against the config in
	// TestCollectorValidate); liveness may only check the port.
	health := containerPort(t, c, "health").ContainerPort
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		var port intstr.IntOrString
		switch {
		case p == nil:
			t.Errorf("%s: no %s probe", where, name)
			continue
		case p.HTTPGet != nil:
			port = p.HTTPGet.Port
		case p.TCPSocket != nil && name == "liveness":
			port = p.TCPSocket.Port
		default:
			t.Errorf("%s: %s probe is neither HTTP nor (liveness only) TCP: %+v", where, name, p.ProbeHandler)
			continue
		}
		if got := resolvePort(t, c, port); got != health {
			t.Errorf("%s: %s probe on port %d, the health extension is on %d", where, name, got, health)
		}
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
		t.Errorf("%s: the readiness probe does not read the health status over HTTP", where)
	}

	// Volumes: every mount has its volume; every ConfigMap volume is
	// rendered; every Secret volume is rendered or expected to exist.
	volumes := map[string]corev1.Volume{}
	for _, v := range w.pod.Volumes {
		if _, dup := volumes[v.Name]; dup {
			t.Errorf("%s: volume %s twice", where, v.Name)
		}
		volumes[v.Name] = v
		if v.ConfigMap != nil {
			if _, ok := r.configMaps[v.ConfigMap.Name]; !ok {
				t.Errorf("%s: volume %s: ConfigMap %s is not rendered", where, v.Name, v.ConfigMap.Name)
			}
		}
		if v.Secret != nil {
			_, ok := r.secrets[v.Secret.SecretName]
			if !ok && !slices.Contains(e.externalSecrets, v.Secret.SecretName) {
				t.Errorf("%s: volume %s: Secret %s is neither rendered nor expected", where, v.Name, v.Secret.SecretName)
			}
		}
	}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok && !hasClaimTemplate(r, w, m.Name) {
			t.Errorf("%s: mount %s at %s has no volume", where, m.Name, m.MountPath)
		}
	}

	// The config: the example verbatim, then the chart's overlay, then the
	// user's config when given; every --config file is in the ConfigMap.
	files := configFiles(t, r, w)
	want := []string{"base.yaml", "overlay.yaml"}
	if w.component == "agent" && e.workloadIdentity {
		want = []string{"base.yaml", "node-agent.yaml", "overlay.yaml"}
	}
	if (w.component == "agent" && e.agentExtraConfig) || (w.component == "gateway" && e.gwExtraConfig) {
		want = append(want, "extra.yaml")
	}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f.mountPath))
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: --config files %v, want %v in that order", where, got, want)
	}
	example, err := os.ReadFile(filepath.Join(repoRoot, "examples", w.example))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) > 0 && files[0].content != string(example) {
		t.Errorf("%s: base.yaml in the ConfigMap is not examples/%s byte for byte", where, w.example)
	}

	// Vault.
	if w.component == "gateway" {
		if got := mustEnv(t, c, "VAULT_ADDR"); got != e.gatewayVaultAddr {
			t.Errorf("%s: VAULT_ADDR=%q, want %q", where, got, e.gatewayVaultAddr)
		}
	} else if mustEnv(t, c, "VAULT_ADDR") == "" {
		t.Errorf("%s: VAULT_ADDR is empty", where)
	}
	auth := e.agentAuth
	if w.component == "gateway" {
		auth = e.gatewayAuth
	}
	// The token logs in (method kubernetes, or a Vault Agent's), or
	// watches the node's pods (the agents' workload identity).
	wantAutomount := auth != "approle" || (w.component == "agent" && e.workloadIdentity)
	if w.pod.AutomountServiceAccountToken == nil || *w.pod.AutomountServiceAccountToken != wantAutomount {
		t.Errorf("%s: automountServiceAccountToken %v, want %v with method %s", where, pointerString(w.pod.AutomountServiceAccountToken), wantAutomount, auth)
	}
	if auth == "approle" {
		for _, env := range []string{"VAULT_ROLE_ID_FILE", "VAULT_SECRET_ID_FILE"} {
			if !underSomeMount(c, mustEnv(t, c, env)) {
				t.Errorf("%s: %s=%s is not in any mounted volume", where, env, mustEnv(t, c, env))
			}
		}
	}
	if p, ok := envValue(c, "VAULT_CACERT"); ok && !underSomeMount(c, p) {
		t.Errorf("%s: VAULT_CACERT=%s is not in any mounted volume", where, p)
	}
}

func hasClaimTemplate(r *rendered, w workload, name string) bool {
	if w.kind != "StatefulSet" {
		return false
	}
	for _, pvc := range r.statefulSets[w.name].Spec.VolumeClaimTemplates {
		if pvc.Name == name {
			return true
		}
	}
	return false
}

func underSomeMount(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

func mountFor(c corev1.Container, name string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func checkAgent(t *testing.T, r *rendered, e expect, w workload) {
	t.Helper()
	c := w.container(t)
	if w.pod.ServiceAccountName != e.agentSA {
		t.Errorf("agents run as %q, want %q", w.pod.ServiceAccountName, e.agentSA)
	}
	// One agent per node, tainted nodes included.
	if !slices.ContainsFunc(w.pod.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Operator == corev1.TolerationOpExists && tol.Key == ""
	}) {
		t.Errorf("agents do not tolerate every taint: %v", w.pod.Tolerations)
	}
	for _, name := range []string{"otlp-grpc", "otlp-http"} {
		p := containerPort(t, c, name)
		if e.hostPort != (p.HostPort == p.ContainerPort) {
			t.Errorf("agent port %s: hostPort %d, want hostPort on=%v", name, p.HostPort, e.hostPort)
		}
	}

	// Where agents send, and how.
	endpoint := mustEnv(t, c, "GATEWAY_ENDPOINT")
	insecure := mustEnv(t, c, "GATEWAY_INSECURE")
	if insecure != strconv.FormatBool(!e.tls) {
		t.Errorf("GATEWAY_INSECURE=%s with tls=%v", insecure, e.tls)
	}
	if host, _, err := net.SplitHostPort(endpoint); err == nil && strings.HasSuffix(host, ".svc.cluster.local") {
		svc := strings.Split(host, ".")[0]
		s, ok := r.services[svc]
		if !ok {
			t.Errorf("GATEWAY_ENDPOINT=%s: Service %s is not rendered", endpoint, svc)
		} else if ns := strings.Split(host, ".")[1]; ns != namespace {
			t.Errorf("GATEWAY_ENDPOINT=%s: namespace %s, want %s", endpoint, ns, namespace)
		} else if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(r.statefulSets[e.fullname+"-gateway"].Spec.Template.Labels)) {
			t.Errorf("GATEWAY_ENDPOINT=%s: that Service does not select the gateway pods", endpoint)
		}
	} else {
		t.Errorf("GATEWAY_ENDPOINT=%s: want <gateway service>.%s.svc.cluster.local:<port>", endpoint, namespace)
	}
	if e.tls {
		m, ok := mountFor(c, "gateway-ca")
		if !ok {
			t.Fatal("TLS on, but the agents mount no gateway CA")
		}
		v := volumeNamed(w.pod, "gateway-ca")
		if v.Secret == nil || len(v.Secret.Items) != 1 {
			t.Errorf("agents' gateway-ca volume %+v: want one item of a Secret (the CA, never the key)", v.VolumeSource)
		} else if strings.Contains(v.Secret.Items[0].Key, "key") {
			t.Errorf("agents mount %s of the gateway's Secret", v.Secret.Items[0].Key)
		}
		if !strings.HasPrefix(m.MountPath, "/") || !m.ReadOnly {
			t.Errorf("agents mount the gateway CA at %q, read-only=%v", m.MountPath, m.ReadOnly)
		}
	} else if _, ok := mountFor(c, "gateway-ca"); ok {
		t.Error("TLS off, but the agents mount a gateway CA")
	}

	svc, ok := r.services[e.fullname+"-agent"]
	if !ok {
		t.Fatalf("no agent Service %s-agent", e.fullname)
	}
	checkServicePorts(t, svc, c, w, e)
	if svc.Spec.InternalTrafficPolicy == nil || *svc.Spec.InternalTrafficPolicy != e.agentPolicy {
		t.Errorf("agent Service internalTrafficPolicy %v, want %s", svc.Spec.InternalTrafficPolicy, e.agentPolicy)
	}
}

func volumeNamed(pod corev1.PodSpec, name string) corev1.Volume {
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	return corev1.Volume{}
}

// checkServicePorts: the Service selects the workload's pods and serves
// OTLP gRPC, OTLP HTTP and metrics on the container ports.
func checkServicePorts(t *testing.T, svc *corev1.Service, c corev1.Container, w workload, e expect) {
	t.Helper()
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.labels)) {
		t.Errorf("Service %s: selector %v does not select the %s pods %v", svc.Name, svc.Spec.Selector, w.component, w.labels)
	}
	want := map[string]int32{"otlp-grpc": 4317, "otlp-http": 4318}
	if e.serviceScrape {
		want["metrics"] = containerPort(t, c, "metrics").ContainerPort
	}
	if len(svc.Spec.Ports) != len(want) {
		t.Errorf("Service %s: ports %v, want exactly %v (metrics only for a scraper that discovers Services)", svc.Name, svc.Spec.Ports, want)
	}
	for name, port := range want {
		found := false
		for _, p := range svc.Spec.Ports {
			if p.Name != name {
				continue
			}
			found = true
			if p.Port != port {
				t.Errorf("Service %s: port %s is %d, want %d", svc.Name, name, p.Port, port)
			}
			if got := resolvePort(t, c, p.TargetPort); got != containerPort(t, c, name).ContainerPort {
				t.Errorf("Service %s: port %s targets %d, the container listens on %d", svc.Name, name, got, containerPort(t, c, name).ContainerPort)
			}
		}
		if !found {
			t.Errorf("Service %s: no port %s", svc.Name, name)
		}
	}
}

func checkGateway(t *testing.T, r *rendered, e expect, w workload) {
	t.Helper()
	c := w.container(t)
	ss := r.statefulSets[w.name]
	if w.pod.ServiceAccountName != e.gatewaySA {
		t.Errorf("gateway runs as %q, want %q", w.pod.ServiceAccountName, e.gatewaySA)
	}
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas != e.gatewayReplicas {
		t.Errorf("gateway replicas %v, want %d", ss.Spec.Replicas, e.gatewayReplicas)
	}
	if got := mustEnv(t, c, "AGENT_AUDIENCE"); got != e.audience {
		t.Errorf("AGENT_AUDIENCE=%q, want %q", got, e.audience)
	}

	// The persistent sending queue: QUEUE_DIR is the mount of a claim template.
	queueDir := mustEnv(t, c, "QUEUE_DIR")
	if queueDir != e.queueDir {
		t.Errorf("QUEUE_DIR=%s, want %s", queueDir, e.queueDir)
	}
	var queueMount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if m.MountPath == queueDir {
			queueMount = &c.VolumeMounts[i]
		}
	}
	if queueMount == nil {
		t.Fatalf("nothing is mounted at QUEUE_DIR=%s", queueDir)
	}
	if queueMount.ReadOnly {
		t.Errorf("the queue at %s is mounted read-only", queueDir)
	}
	if e.persistence {
		if !hasClaimTemplate(r, w, queueMount.Name) {
			t.Errorf("QUEUE_DIR=%s is mounted from %q, which is not one of the volumeClaimTemplates", queueDir, queueMount.Name)
		}
		if v := volumeNamed(w.pod, queueMount.Name); v.Name != "" {
			t.Errorf("the pod's volume %s shadows the claim template of the same name", v.Name)
		}
		for _, pvc := range ss.Spec.VolumeClaimTemplates {
			if pvc.Spec.Resources.Requests.Storage().IsZero() || len(pvc.Spec.AccessModes) == 0 {
				t.Errorf("claim template %s: no storage request or access mode", pvc.Name)
			}
		}
	} else {
		if len(ss.Spec.VolumeClaimTemplates) != 0 {
			t.Errorf("persistence off, but volumeClaimTemplates are rendered")
		}
		if v := volumeNamed(w.pod, queueMount.Name); v.EmptyDir == nil {
			t.Errorf("persistence off: the queue volume %s is not an emptyDir", queueMount.Name)
		}
	}
	if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %s, want Parallel", ss.Spec.PodManagementPolicy)
	}

	// Services: the gateway's, and the headless one that governs the StatefulSet.
	svc, ok := r.services[e.fullname+"-gateway"]
	if !ok {
		t.Fatalf("no gateway Service %s-gateway", e.fullname)
	}
	checkServicePorts(t, svc, c, w, e)
	headless, ok := r.services[ss.Spec.ServiceName]
	if !ok {
		t.Fatalf("StatefulSet serviceName %q is not a rendered Service", ss.Spec.ServiceName)
	}
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s governs the StatefulSet but is not headless", headless.Name)
	}
	if !labels.SelectorFromSet(headless.Spec.Selector).Matches(labels.Set(w.labels)) {
		t.Errorf("headless Service %s does not select the gateway pods", headless.Name)
	}

	// Scrape annotations on the Services, when there rather than on pods.
	for _, s := range []*corev1.Service{svc, r.services[e.fullname+"-agent"]} {
		_, annotated := s.Annotations["prometheus.io/scrape"]
		if annotated != e.serviceScrape {
			t.Errorf("Service %s: prometheus.io/scrape annotation present=%v, want %v", s.Name, annotated, e.serviceScrape)
		}
		if e.serviceScrape && s.Annotations["prometheus.io/port"] != mustEnv(t, c, "METRICS_PORT") {
			t.Errorf("Service %s: prometheus.io/port %q", s.Name, s.Annotations["prometheus.io/port"])
		}
	}

	if e.tls {
		if _, ok := mountFor(c, "gateway-tls"); !ok {
			t.Error("TLS on, but the gateway mounts no certificate")
		}
	} else if _, ok := mountFor(c, "gateway-tls"); ok {
		t.Error("TLS off, but the gateway mounts a certificate")
	}
}

func checkServiceAccounts(t *testing.T, r *rendered, e expect) {
	t.Helper()
	if got := sortedKeys(r.serviceAccounts); !slices.Equal(got, e.createdSAs) {
		t.Errorf("ServiceAccounts %v, want %v", got, e.createdSAs)
	}
	for _, sa := range r.serviceAccounts {
		if sa.Namespace != namespace {
			t.Errorf("ServiceAccount %s in namespace %q", sa.Name, sa.Namespace)
		}
	}
	delegations := map[string]*rbacv1.ClusterRoleBinding{}
	for name, crb := range r.crbs {
		if crb.RoleRef.Name == "system:auth-delegator" {
			delegations[name] = crb
		}
	}
	checkPodReader(t, r, e)
	if len(e.delegated) == 0 {
		if len(delegations) != 0 {
			t.Errorf("no service account needs system:auth-delegator here, but ClusterRoleBindings %v", sortedKeys(delegations))
		}
		return
	}
	if len(delegations) != 1 {
		t.Fatalf("want one ClusterRoleBinding to system:auth-delegator, got %v", sortedKeys(delegations))
	}
	for _, crb := range delegations {
		if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.APIGroup != "rbac.authorization.k8s.io" {
			t.Errorf("ClusterRoleBinding %s binds %+v, want ClusterRole system:auth-delegator", crb.Name, crb.RoleRef)
		}
		if got, want := subjects(t, crb), sorted(e.delegated); !slices.Equal(got, want) {
			t.Errorf("ClusterRoleBinding %s subjects %v, want exactly %v", crb.Name, got, want)
		}
	}
}

// checkPodReader: with agent.workloadIdentity, one ClusterRole lets the
// agents get, list and watch pods (and get service accounts when aliases
// are their uids), nothing else, bound to the agents' account alone;
// without it, no ClusterRole at all.
func checkPodReader(t *testing.T, r *rendered, e expect) {
	t.Helper()
	if !e.workloadIdentity {
		if len(r.clusterRoles) != 0 {
			t.Errorf("ClusterRoles %v without agent.workloadIdentity", sortedKeys(r.clusterRoles))
		}
		return
	}
	if len(r.clusterRoles) != 1 {
		t.Fatalf("want one ClusterRole (the agents' pod watch), got %v", sortedKeys(r.clusterRoles))
	}
	for _, role := range r.clusterRoles {
		var got []string
		for _, rule := range role.Rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						got = append(got, g+"/"+res+":"+v)
					}
				}
			}
			if len(rule.ResourceNames) != 0 || len(rule.NonResourceURLs) != 0 {
				t.Errorf("ClusterRole %s: rule %+v", role.Name, rule)
			}
		}
		want := []string{"/pods:get", "/pods:list", "/pods:watch"}
		if e.aliasByUID {
			want = append(want, "/serviceaccounts:get")
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("ClusterRole %s allows %v, want exactly %v", role.Name, got, want)
		}
		bound := 0
		for _, crb := range r.crbs {
			if crb.RoleRef.Name != role.Name {
				continue
			}
			bound++
			if got := subjects(t, crb); !slices.Equal(got, []string{e.agentSA}) {
				t.Errorf("ClusterRoleBinding %s binds %s to %v, want only the agents' %s", crb.Name, role.Name, got, e.agentSA)
			}
		}
		if bound != 1 {
			t.Errorf("ClusterRole %s bound %d times, want once", role.Name, bound)
		}
	}
}

// subjects are a binding's service accounts (all in the release's
// namespace), sorted.
func subjects(t *testing.T, crb *rbacv1.ClusterRoleBinding) []string {
	t.Helper()
	var out []string
	for _, s := range crb.Subjects {
		if s.Kind != "ServiceAccount" || s.Namespace != namespace {
			t.Errorf("ClusterRoleBinding %s: subject %+v", crb.Name, s)
		}
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// checkTLSSecret: a generated gateway certificate is a kubernetes.io/tls
// Secret with the CA the agents trust.
func checkTLSSecret(t *testing.T, r *rendered, e expect) {
	t.Helper()
	for name, s := range r.secrets {
		if s.Type != corev1.SecretTypeTLS {
			t.Errorf("Secret %s: type %s, the chart renders only TLS Secrets", name, s.Type)
		}
		for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
			if len(s.Data[k]) == 0 {
				t.Errorf("Secret %s: no %s", name, k)
			}
		}
	}
	want := []string{}
	if e.generatedCert {
		want = []string{e.fullname + "-gateway-tls"}
	}
	if got := sortedKeys(r.secrets); !slices.Equal(got, want) {
		t.Errorf("Secrets %v, want %v", got, want)
	}
}

// checkGeneratedCert: the generated certificate verifies against the
// generated CA for the names agents dial, as a TLS server certificate.
func checkGeneratedCert(t *testing.T, s *corev1.Secret, names ...string) {
	t.Helper()
	if s == nil {
		t.Fatal("no generated certificate Secret")
	}
	parse := func(key string) *x509.Certificate {
		block, _ := pem.Decode(s.Data[key])
		if block == nil {
			t.Fatalf("Secret %s: %s is not PEM", s.Name, key)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("Secret %s: %s: %v", s.Name, key, err)
		}
		return cert
	}
	ca, leaf := parse("ca.crt"), parse("tls.crt")
	if !ca.IsCA {
		t.Errorf("Secret %s: ca.crt is not a CA certificate", s.Name)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("Secret %s: the certificate does not verify for %s: %v", s.Name, name, err)
		}
	}
	if block, _ := pem.Decode(s.Data["tls.key"]); block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
		t.Errorf("Secret %s: tls.key is not a PEM private key", s.Name)
	}
}

func pointerString(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}
