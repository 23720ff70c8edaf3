package kubetest

import (
	"net/http"
	"os"
	"path/filepath"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// PodSpec is a pod as the tests need it: no kubelet runs, so the test
// plays the scheduler (NodeName) and the kubelet (the Running status and
// IP it reports).
type PodSpec struct {
	Namespace, Name, Node, ServiceAccount string
	HostNetwork                           bool
	IP                                    string
}

// Pod creates the pod and reports it running with its IP, as the kubelet
// would; it returns the pod's uid.
func (s *Server) Pod(t vaulttest.T, p PodSpec) string {
	t.Helper()
	spec := Object{
		"nodeName": p.Node, "serviceAccountName": p.ServiceAccount, "hostNetwork": p.HostNetwork,
		"containers": []Object{{"name": "app", "image": "app"}},
	}
	pod := s.Create(t, "/api/v1/namespaces/"+p.Namespace+"/pods",
		Object{"apiVersion": "v1", "kind": "Pod", "metadata": Object{"name": p.Name}, "spec": spec})
	status := Object{"status": Object{"phase": "Running", "podIP": p.IP, "podIPs": []Object{{"ip": p.IP}}, "hostIP": "127.0.0.1"}}
	var out Object
	code, _, err := s.callAsPatch(http.MethodPatch, "/api/v1/namespaces/"+p.Namespace+"/pods/"+p.Name+"/status", status, &out)
	if err != nil || code != http.StatusOK {
		t.Fatalf("pod %s/%s status: %d %v %v", p.Namespace, p.Name, code, err, out["message"])
	}
	return UID(pod)
}

// ClusterRole creates a cluster role of rules, each {apiGroups, resources, verbs}.
func (s *Server) ClusterRole(t vaulttest.T, name string, rules ...Object) {
	t.Helper()
	s.Create(t, "/apis/rbac.authorization.k8s.io/v1/clusterroles", Object{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": Object{"name": name}, "rules": rules,
	})
}

// Kubeconfig writes a kubeconfig that reaches this API server with token
// (a service account's, say) and returns its path, for KUBECONFIG.
func (s *Server) Kubeconfig(t vaulttest.T, token string) string {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte(s.CAPEM), 0o600); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	cfg := "apiVersion: v1\nkind: Config\n" +
		"clusters: [{name: test, cluster: {server: \"" + s.URL + "\", certificate-authority: \"" + ca + "\"}}]\n" +
		"users: [{name: test, user: {token: \"" + token + "\"}}]\n" +
		"contexts: [{name: test, context: {cluster: test, user: test}}]\n" +
		"current-context: test\n"
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	return path
}
