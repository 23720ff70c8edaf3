// Package helmtest proves the Helm chart in ../vaultlightstep offline: it
// lints and renders the chart with Helm (HELM_BIN), decodes every rendered
// object strictly into the k8s.io/api types, checks what the deployment
// relies on, and validates every rendered collector config with the built
// collector (COLLECTOR_BIN), with the environment the pod spec gives it.
//
// No kubelet runs here; a real kube-apiserver does (internal/kubetest): the
// chart is installed into it (apiserver_test.go). What only a whole cluster
// can prove (scheduling, volumes, DNS) is listed in docs/kubernetes.md.
package helmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

const (
	chartDir  = "../vaultlightstep"
	repoRoot  = "../../.."
	release   = "rel"
	namespace = "obs"
)

// valueSet is one way of installing the chart: the default values, or the
// default values with one of the chart's ci/*-values.yaml files over them.
type valueSet struct {
	name string // "default", or the file name without -values.yaml
	file string // "" for the defaults
}

// valueSets lists the default values and every ci/*-values.yaml file; a file
// without expectations (see expectations_test.go) fails the test.
func valueSets(t *testing.T) []valueSet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sets := []valueSet{{name: "default"}}
	for _, f := range files {
		sets = append(sets, valueSet{name: strings.TrimSuffix(filepath.Base(f), "-values.yaml"), file: f})
	}
	if len(sets) < 2 {
		t.Fatalf("no %s/ci/*-values.yaml: at least one non-default values file is tested", chartDir)
	}
	return sets
}

// requiredBin is the executable named by the environment variable env.
func requiredBin(t *testing.T, env, what string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: it names the %s these tests run. `make test` builds it and sets it; "+
			"by hand: make %s, then %s=<path> go test ./...", env, what, makeTargetFor(env), env)
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s=%s is not an executable file (%v): build it with `make %s`", env, p, err, makeTargetFor(env))
	}
	return p
}

func makeTargetFor(env string) string {
	if env == "HELM_BIN" {
		return "helm"
	}
	return "collector"
}

func helmBin(t *testing.T) string {
	return requiredBin(t, "HELM_BIN", "Helm v3 binary")
}

func collectorBin(t *testing.T) string {
	return requiredBin(t, "COLLECTOR_BIN", "otelcol-vaultlightstep binary")
}

// helmArgs are the arguments after the subcommand for one value set.
func helmArgs(set valueSet, args ...string) []string {
	if set.file != "" {
		args = append(args, "--values", set.file)
	}
	return args
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

// scheme knows the kinds the chart may render, and nothing else: an object
// of another kind fails to decode.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strictDecoder fails on unknown and duplicate fields.
var strictDecoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

// rendered is the chart's output for one value set, decoded.
type rendered struct {
	set             valueSet
	objects         []runtime.Object
	daemonSets      map[string]*appsv1.DaemonSet
	statefulSets    map[string]*appsv1.StatefulSet
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	crbs            map[string]*rbacv1.ClusterRoleBinding
	clusterRoles    map[string]*rbacv1.ClusterRole
	netpols         map[string]*networkingv1.NetworkPolicy
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeStrict decodes one YAML document into its k8s.io/api type.
func decodeStrict(doc []byte) (runtime.Object, error) {
	obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
	if err != nil {
		return nil, err
	}
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, fmt.Errorf("no apiVersion/kind")
	}
	return obj, nil
}

// isEmptyDoc says whether a document holds only comments and blank lines.
func isEmptyDoc(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

var (
	renderMu    sync.Mutex
	renderCache = map[string]*rendered{}
)

// render runs `helm template` for set (once per test binary) and decodes
// every document strictly.
func render(t *testing.T, set valueSet) *rendered {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if r, ok := renderCache[set.name]; ok {
		return r
	}
	out := run(t, helmBin(t), helmArgs(set, "template", release, chartDir, "--namespace", namespace)...)
	r := &rendered{
		set:             set,
		daemonSets:      map[string]*appsv1.DaemonSet{},
		statefulSets:    map[string]*appsv1.StatefulSet{},
		services:        map[string]*corev1.Service{},
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		crbs:            map[string]*rbacv1.ClusterRoleBinding{},
		clusterRoles:    map[string]*rbacv1.ClusterRole{},
		netpols:         map[string]*networkingv1.NetworkPolicy{},
	}
	for i, doc := range docSeparator.Split(string(out), -1) {
		if isEmptyDoc([]byte(doc)) {
			continue
		}
		obj, err := decodeStrict([]byte(doc))
		if err != nil {
			t.Fatalf("%s: rendered document %d does not decode strictly into a k8s.io/api type: %v\n%s", set.name, i, err, doc)
		}
		r.objects = append(r.objects, obj)
		switch o := obj.(type) {
		case *appsv1.DaemonSet:
			r.daemonSets[o.Name] = o
		case *appsv1.StatefulSet:
			r.statefulSets[o.Name] = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		case *corev1.ServiceAccount:
			r.serviceAccounts[o.Name] = o
		case *rbacv1.ClusterRoleBinding:
			r.crbs[o.Name] = o
		case *rbacv1.ClusterRole:
			r.clusterRoles[o.Name] = o
		case *networkingv1.NetworkPolicy:
			r.netpols[o.Name] = o
		default:
			t.Fatalf("%s: rendered document %d is a %T, which these tests do not check: add its checks", set.name, i, obj)
		}
	}
	renderCache[set.name] = r
	return r
}

// TestExampleCopiesMatch: the chart ships the tested example configs, byte
// for byte (Helm's .Files cannot read outside the chart, so they are copies).
func TestExampleCopiesMatch(t *testing.T) {
	for _, name := range []string{"agent.yaml", "node-agent.yaml", "gateway.yaml"} {
		example := filepath.Join("examples", name)
		chartCopy := filepath.Join("deploy", "helm", "vaultlightstep", "files", name)
		want, err := os.ReadFile(filepath.Join(repoRoot, example))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(repoRoot, chartCopy))
		if err != nil {
			t.Fatalf("%s: %v; refresh it from the repository root: cp %s %s", chartCopy, err, example, chartCopy)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: the chart must ship the tested example config unchanged "+
				"(chart-specific changes go in the overlay in templates/*-configmap.yaml). "+
				"Refresh it from the repository root: cp %s %s", chartCopy, example, example, chartCopy)
		}
	}
}

// TestHelmLint: `helm lint --strict` with each value set.
func TestHelmLint(t *testing.T) {
	helm := helmBin(t)
	for _, set := range valueSets(t) {
		t.Run(set.name, func(t *testing.T) {
			out := run(t, helm, helmArgs(set, "lint", "--strict", chartDir, "--namespace", namespace)...)
			if !bytes.Contains(out, []byte("0 chart(s) failed")) {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// TestStrictDecoderRejectsUnknownFields proves the decoder the other tests
// rely on is strict: an unknown field and a duplicate field are errors.
func TestStrictDecoderRejectsUnknownFields(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": `apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports: [{port: 1, targetPortt: 2}]
`,
		"duplicate field": `apiVersion: v1
kind: ServiceAccount
metadata: {name: a}
metadata: {name: b}
`,
		"unknown kind": `apiVersion: v1
kind: Nonsense
metadata: {name: a}
`,
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decodeStrict([]byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n")); err != nil {
		t.Errorf("a valid object: %v", err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
