package e2e

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/vaultlightstep/vaultlightstep/internal/kubetest"
	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// saTokenDir is where the kubelet mounts a pod's service account token.
const saTokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// helmTemplate renders the chart with HELM_BIN (make test sets it).
func helmTemplate(t *testing.T, release, namespace string, set ...string) []kubetest.Object {
	t.Helper()
	helm := os.Getenv("HELM_BIN")
	vaulttest.Need(t, helm, "Helm (HELM_BIN)")
	args := []string{"template", release, filepath.Join(testbed.RepoRoot(), "deploy", "helm", "vaultlightstep"), "--namespace", namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helm, args...).Output()
	require.NoError(t, err, "helm template")
	var objs []kubetest.Object
	for _, doc := range strings.Split(string(out), "\n---") {
		var obj kubetest.Object
		require.NoError(t, yaml.Unmarshal([]byte(doc), &obj))
		if obj != nil {
			objs = append(objs, obj)
		}
	}
	return objs
}

// hostPod is a pod of the chart, made runnable as a host process from
// what the API server stores: its ConfigMap and Secret volumes written
// under a root directory, its service account token minted and put where
// the kubelet mounts it, its environment resolved, and every absolute path
// in its config files and environment moved under the root.
type hostPod struct {
	root    string
	env     map[string]string
	configs []string // the --config files, in order
}

func (p *hostPod) path(abs string) string { return filepath.Join(p.root, abs) }

// runnable reads the workload (a DaemonSet or StatefulSet) back from the API
// server and lays out its first container as a host process.
func runnable(t *testing.T, k *kubetest.Server, ns, kind, name string) *hostPod {
	t.Helper()
	_, w := k.Do(t, "GET", "/apis/apps/v1/namespaces/"+ns+"/"+strings.ToLower(kind)+"s/"+name, nil)
	spec := dig(w, "spec", "template", "spec").(map[string]any)
	c := spec["containers"].([]any)[0].(map[string]any)
	p := &hostPod{root: t.TempDir(), env: map[string]string{}}
	volumes := map[string]map[string]any{}
	for _, v := range spec["volumes"].([]any) {
		volumes[v.(map[string]any)["name"].(string)] = v.(map[string]any)
	}
	var mounts []string
	for _, m := range c["volumeMounts"].([]any) {
		mount := m.(map[string]any)
		dir := mount["mountPath"].(string)
		mounts = append(mounts, dir)
		require.NoError(t, os.MkdirAll(p.path(dir), 0o700))
		vol, ok := volumes[mount["name"].(string)]
		if !ok { // a claim template's volume: an empty directory
			continue
		}
		for key, content := range volumeFiles(t, k, ns, vol) {
			require.NoError(t, os.WriteFile(filepath.Join(p.path(dir), key), content, 0o600))
		}
	}
	if spec["automountServiceAccountToken"] != false {
		sa := spec["serviceAccountName"].(string)
		require.NoError(t, os.MkdirAll(p.path(saTokenDir), 0o700))
		token := k.Token(t, ns, sa, kubetest.TokenOptions{ExpirationSeconds: 3607}) // as the kubelet projects it
		require.NoError(t, os.WriteFile(p.path(saTokenDir+"/token"), []byte(token), 0o600))
		mounts = append(mounts, saTokenDir)
	}
	for _, e := range c["env"].([]any) {
		ev := e.(map[string]any)
		value, _ := ev["value"].(string)
		if from, ok := ev["valueFrom"].(map[string]any); ok {
			value = downward(t, from)
		}
		p.env[ev["name"].(string)] = p.rebase(value, mounts)
	}
	for _, a := range c["args"].([]any) {
		if file, ok := strings.CutPrefix(a.(string), "--config=file:"); ok {
			content, err := os.ReadFile(p.path(file))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p.path(file), []byte(p.rebase(string(content), mounts)), 0o600))
			p.configs = append(p.configs, p.path(file))
		}
	}
	return p
}

// node is the node the test schedules the chart's pods on.
const node = "node-a"

// downward resolves the downward API fields the chart uses.
func downward(t *testing.T, from map[string]any) string {
	t.Helper()
	if ref, ok := from["fieldRef"].(map[string]any); ok && ref["fieldPath"] == "spec.nodeName" {
		return node
	}
	t.Fatalf("env valueFrom %v is not modelled here", from)
	return ""
}

// rebase moves every mounted absolute path in s under the root.
func (p *hostPod) rebase(s string, mounts []string) string {
	for _, m := range mounts {
		s = strings.ReplaceAll(s, " "+m+"/", " "+p.path(m)+"/")
		s = strings.ReplaceAll(s, `"`+m+"/", `"`+p.path(m)+"/")
		if s == m {
			s = p.path(m)
		}
	}
	return s
}

// volumeFiles are the files a ConfigMap or Secret volume holds, read from
// the API server.
func volumeFiles(t *testing.T, k *kubetest.Server, ns string, vol map[string]any) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	if cm, ok := vol["configMap"].(map[string]any); ok {
		_, obj := k.Do(t, "GET", "/api/v1/namespaces/"+ns+"/configmaps/"+cm["name"].(string), nil)
		for key, v := range obj["data"].(map[string]any) {
			files[key] = []byte(v.(string))
		}
		return selectItems(cm, files)
	}
	if sec, ok := vol["secret"].(map[string]any); ok {
		_, obj := k.Do(t, "GET", "/api/v1/namespaces/"+ns+"/secrets/"+sec["secretName"].(string), nil)
		for key, v := range obj["data"].(map[string]any) {
			b, err := base64.StdEncoding.DecodeString(v.(string))
			require.NoError(t, err)
			files[key] = b
		}
		return selectItems(sec, files)
	}
	t.Fatalf("volume %v: only ConfigMap and Secret volumes are laid out", vol["name"])
	return nil
}

// selectItems applies a volume's items (key → path), as the kubelet does.
func selectItems(source map[string]any, files map[string][]byte) map[string][]byte {
	items, ok := source["items"].([]any)
	if !ok {
		return files
	}
	out := map[string][]byte{}
	for _, it := range items {
		item := it.(map[string]any)
		out[item["path"].(string)] = files[item["key"].(string)]
	}
	return out
}

func dig(obj map[string]any, keys ...string) any {
	var v any = obj
	for _, k := range keys {
		v = v.(map[string]any)[k]
	}
	return v
}
