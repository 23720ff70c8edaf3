package helmtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/vaultlightstep/vaultlightstep/internal/kubetest"
)

// restricted labels a namespace so that the API server enforces the
// restricted Pod Security Standard, and warns about workloads that would
// break it.
var restricted = map[string]string{
	"pod-security.kubernetes.io/enforce": "restricted",
	"pod-security.kubernetes.io/warn":    "restricted",
}

// TestChartInstalledIntoTheAPIServer installs each value set's rendered
// chart into a real kube-apiserver (v1.34.4, make kube), in a namespace that
// enforces the restricted Pod Security Standard: every object is stored
// without a warning, and the pods the DaemonSet and StatefulSet
// controllers would create are admitted (a pod that breaks the standard,
// the control, is refused). Then the API server's own authorizer says
// what each of the chart's service accounts may do: exactly what its mode
// needs (TokenReviews and SubjectAccessReviews when Vault reviews logins
// with the client's JWT; reading pods, and service accounts with uid
// aliases, for the agents' workload identity), no secret, no token.
func TestChartInstalledIntoTheAPIServer(t *testing.T) {
	k := kubetest.Start(t)
	helm := helmBin(t)
	for i, set := range valueSets(t) {
		t.Run(set.name, func(t *testing.T) {
			e := expectationsFor(t, set)
			ns := fmt.Sprintf("obs-%d", i)
			k.Namespace(t, ns, restricted)
			for _, sa := range external(e) { // the user creates these before installing
				k.ServiceAccount(t, ns, sa)
			}
			var workloads []kubetest.Object
			for _, obj := range manifests(t, run(t, helm, helmArgs(set, "template", release, chartDir, "--namespace", ns)...)) {
				code, stored, warnings := k.Submit(t, ns, obj)
				if code != http.StatusCreated {
					t.Fatalf("%s refused: %d %v", describe(obj), code, stored["message"])
				}
				if len(warnings) > 0 && !(e.hostPort && obj["kind"] == "DaemonSet") {
					t.Errorf("%s: the API server warned: %s", describe(obj), strings.Join(warnings, "; "))
				}
				if kind := obj["kind"]; kind == "DaemonSet" || kind == "StatefulSet" {
					workloads = append(workloads, stored)
				}
			}
			if len(workloads) != 2 {
				t.Fatalf("%d workloads rendered, want the agent DaemonSet and the gateway StatefulSet", len(workloads))
			}
			for _, w := range workloads {
				pod := podOf(t, w)
				if e.hostPort && w["kind"] == "DaemonSet" {
					// No Pod Security level but privileged allows a hostPort:
					// the chart's README says so; the API server refuses it, naming it.
					if code, out, _ := k.Submit(t, ns, pod); code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out["message"]), "hostPort") {
						t.Errorf("%s with agent.hostPort: %d %v, want refused for its hostPort", describe(w), code, out["message"])
					}
					continue
				}
				if code, out, _ := k.Submit(t, ns, pod); code != http.StatusCreated {
					t.Errorf("%s: its pod was not admitted under the restricted standard: %d %v", describe(w), code, out["message"])
				}
				escalating := podOf(t, w)
				container(escalating)["securityContext"].(map[string]any)["allowPrivilegeEscalation"] = true
				meta(escalating)["name"] = meta(escalating)["name"].(string) + "-escalating"
				if code, out, _ := k.Submit(t, ns, escalating); code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out["message"]), "PodSecurity") {
					t.Errorf("the control: a pod allowing privilege escalation was not refused by PodSecurity: %d %v", code, out["message"])
				}
			}
			checkAccess(t, k, ns, e)
		})
	}
}

// checkAccess asks the API server's authorizer, for each of the chart's
// service accounts, the questions an attacker holding its token would.
func checkAccess(t *testing.T, k *kubetest.Server, ns string, e expect) {
	t.Helper()
	delegated := map[string]bool{}
	for _, sa := range e.delegated {
		delegated[sa] = true
	}
	for _, sa := range []string{e.agentSA, e.gatewaySA} {
		for _, a := range []kubetest.Access{
			{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
			{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
			{Verb: "get", Resource: "secrets", Namespace: ns},
			{Verb: "list", Resource: "secrets", Namespace: ns},
			{Verb: "list", Resource: "configmaps", Namespace: ns},
			{Verb: "list", Resource: "pods"},
			{Verb: "watch", Resource: "pods", Namespace: ns},
			{Verb: "create", Resource: "pods", Namespace: ns},
			{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: ns, Name: e.gatewaySA},
			{Verb: "get", Resource: "serviceaccounts", Namespace: "default", Name: "default"},
			{Verb: "get", Resource: "nodes"},
			{Verb: "list", Resource: "namespaces"},
		} {
			want := delegated[sa] && (a.Resource == "tokenreviews" || a.Resource == "subjectaccessreviews")
			if sa == e.agentSA && e.workloadIdentity { // the pod watch
				want = want || (a.Resource == "pods" && a.Verb != "create") || (a.Resource == "serviceaccounts" && a.Subresource == "" && e.aliasByUID)
			}
			if got := k.Can(t, ns, sa, a); got != want {
				t.Errorf("%s may %s: %v, want %v", sa, a, got, want)
			}
		}
	}
}

// external are the service accounts the pods use that the chart does not create.
func external(e expect) []string {
	var out []string
	for _, sa := range []string{e.agentSA, e.gatewaySA} {
		created := false
		for _, c := range e.createdSAs {
			created = created || c == sa
		}
		if !created {
			out = append(out, sa)
		}
	}
	return out
}

// manifests are the rendered documents as API objects.
func manifests(t *testing.T, out []byte) []kubetest.Object {
	t.Helper()
	var objs []kubetest.Object
	for _, doc := range docSeparator.Split(string(out), -1) {
		if isEmptyDoc([]byte(doc)) {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("rendered document: %v\n%s", err, doc)
		}
		var obj kubetest.Object
		if err := json.Unmarshal(j, &obj); err != nil {
			t.Fatalf("rendered document: %v", err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// podOf is the pod a workload's controller would create from its
// template: a StatefulSet's pod also gets a volume for each claim template.
func podOf(t *testing.T, w kubetest.Object) kubetest.Object {
	t.Helper()
	var copied kubetest.Object
	b, _ := json.Marshal(w)
	if err := json.Unmarshal(b, &copied); err != nil {
		t.Fatal(err)
	}
	spec := copied["spec"].(map[string]any)
	tmpl := spec["template"].(map[string]any)
	podSpec := tmpl["spec"].(map[string]any)
	name := meta(copied)["name"].(string) + "-0"
	claims, _ := spec["volumeClaimTemplates"].([]any)
	for _, c := range claims {
		claim := c.(map[string]any)["metadata"].(map[string]any)["name"].(string)
		vols, _ := podSpec["volumes"].([]any)
		podSpec["volumes"] = append(vols, map[string]any{
			"name": claim, "persistentVolumeClaim": map[string]any{"claimName": claim + "-" + name},
		})
	}
	labels := tmpl["metadata"].(map[string]any)["labels"]
	return kubetest.Object{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "labels": labels}, "spec": podSpec}
}

func meta(obj kubetest.Object) map[string]any { return obj["metadata"].(map[string]any) }

// container is a pod's first container.
func container(pod kubetest.Object) map[string]any {
	return pod["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
}

func describe(obj kubetest.Object) string {
	return fmt.Sprintf("%v %v", obj["kind"], meta(obj)["name"])
}
