package kubetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Object is an API object as JSON.
type Object = map[string]any

// call sends one request as the admin and decodes a JSON answer into out.
func (s *Server) call(method, path string, body, out any) (int, error) {
	code, _, err := s.callAs(s.AdminToken, method, path, body, out)
	return code, err
}

// callAs sends one request with token; it returns the status and the
// API server's warnings (e.g. what a pod template would violate).
func (s *Server) callAs(token, method, path string, body, out any) (int, []string, error) {
	return s.send(token, method, path, "application/json", body, out)
}

// callAsPatch sends a JSON merge patch as the admin.
func (s *Server) callAsPatch(method, path string, body, out any) (int, []string, error) {
	return s.send(s.AdminToken, method, path, "application/merge-patch+json", body, out)
}

func (s *Server) send(token, method, path, contentType string, body, out any) (int, []string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	warnings := resp.Header.Values("Warning")
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, warnings, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, warnings, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, warnings, nil
}

// Submit creates any object, as `kubectl create -f` does, in namespace
// unless it is cluster-scoped, and returns the status, the answer and the
// API server's warnings, without judging them.
func (s *Server) Submit(t vaulttest.T, namespace string, obj Object) (int, Object, []string) {
	t.Helper()
	path, err := collection(obj, namespace)
	if err != nil {
		t.Fatalf("%v", err)
	}
	var out Object
	code, warnings, err := s.callAs(s.AdminToken, http.MethodPost, path, obj, &out)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return code, out, warnings
}

// clusterScoped are the kinds without a namespace the tests create.
var clusterScoped = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}

// collection is the REST path objects of obj's kind are created under.
func collection(obj Object, namespace string) (string, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion == "" || kind == "" {
		return "", fmt.Errorf("an object without apiVersion or kind: %v", obj["metadata"])
	}
	base := "/apis/" + apiVersion
	if apiVersion == "v1" {
		base = "/api/v1"
	}
	resource := strings.ToLower(kind) + "s"
	if strings.HasSuffix(resource, "ys") { // NetworkPolicy
		resource = strings.TrimSuffix(resource, "ys") + "ies"
	}
	if clusterScoped[kind] {
		return base + "/" + resource, nil
	}
	return base + "/namespaces/" + namespace + "/" + resource, nil
}

// Do sends a request as the admin, fails the test on a transport error,
// and returns the status and the answer.
func (s *Server) Do(t vaulttest.T, method, path string, body any) (int, Object) {
	t.Helper()
	var out Object
	code, err := s.call(method, path, body, &out)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return code, out
}

// Create creates obj under path (a collection, e.g. /api/v1/namespaces)
// and returns it as stored; anything but 201 fails the test.
func (s *Server) Create(t vaulttest.T, path string, obj Object) Object {
	t.Helper()
	code, out := s.Do(t, http.MethodPost, path, obj)
	if code != http.StatusCreated {
		t.Fatalf("POST %s: %d %v", path, code, out["message"])
	}
	return out
}

// Delete deletes the object at path; anything but 200 fails the test.
func (s *Server) Delete(t vaulttest.T, path string) {
	t.Helper()
	if code, out := s.Do(t, http.MethodDelete, path, nil); code != http.StatusOK {
		t.Fatalf("DELETE %s: %d %v", path, code, out["message"])
	}
}

// DeleteNow deletes the object at path with no grace period, as the
// kubelet finishes a pod's deletion once its containers are gone (a
// graceful delete only marks a pod terminating, and no kubelet runs here).
func (s *Server) DeleteNow(t vaulttest.T, path string) {
	t.Helper()
	if code, out := s.Do(t, http.MethodDelete, path, Object{"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}); code != http.StatusOK {
		t.Fatalf("DELETE %s: %d %v", path, code, out["message"])
	}
}

// Namespace creates a namespace with labels.
func (s *Server) Namespace(t vaulttest.T, name string, labels map[string]string) {
	t.Helper()
	s.Create(t, "/api/v1/namespaces", Object{"apiVersion": "v1", "kind": "Namespace",
		"metadata": Object{"name": name, "labels": labels}})
}

// ServiceAccount creates a service account and returns its uid.
func (s *Server) ServiceAccount(t vaulttest.T, namespace, name string) string {
	t.Helper()
	sa := s.Create(t, "/api/v1/namespaces/"+namespace+"/serviceaccounts",
		Object{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": Object{"name": name}})
	return UID(sa)
}

// Secret creates an opaque secret and returns its uid (a token can be
// bound to it, as the kubelet binds one to its pod).
func (s *Server) Secret(t vaulttest.T, namespace, name string) string {
	t.Helper()
	sec := s.Create(t, "/api/v1/namespaces/"+namespace+"/secrets",
		Object{"apiVersion": "v1", "kind": "Secret", "metadata": Object{"name": name}})
	return UID(sec)
}

// UID is an object's metadata.uid.
func UID(obj Object) string {
	md, _ := obj["metadata"].(Object)
	uid, _ := md["uid"].(string)
	return uid
}

// TokenOptions are what the kubelet asks for when it projects a token.
type TokenOptions struct {
	Audiences []string
	// ExpirationSeconds: 0 is the API server's default (1 h); 600 is the least.
	ExpirationSeconds int64
	// BoundSecret, when set, binds the token to that secret (name and
	// uid): deleting the secret invalidates the token, as deleting a pod
	// invalidates its projected token.
	BoundSecret, BoundSecretUID string
}

// Token mints a service-account token through the TokenRequest API.
func (s *Server) Token(t vaulttest.T, namespace, serviceAccount string, o TokenOptions) string {
	t.Helper()
	spec := Object{"audiences": o.Audiences}
	if o.ExpirationSeconds > 0 {
		spec["expirationSeconds"] = o.ExpirationSeconds
	}
	if o.BoundSecret != "" {
		spec["boundObjectRef"] = Object{"kind": "Secret", "apiVersion": "v1", "name": o.BoundSecret, "uid": o.BoundSecretUID}
	}
	out := s.Create(t, "/api/v1/namespaces/"+namespace+"/serviceaccounts/"+serviceAccount+"/token",
		Object{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
	status, _ := out["status"].(Object)
	token, _ := status["token"].(string)
	if token == "" {
		t.Fatalf("TokenRequest for %s/%s: no token", namespace, serviceAccount)
	}
	return token
}

// BindClusterRole binds a cluster role to a service account, cluster-wide.
func (s *Server) BindClusterRole(t vaulttest.T, binding, clusterRole, namespace, serviceAccount string) {
	t.Helper()
	s.Create(t, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", Object{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": Object{"name": binding},
		"roleRef":  Object{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": clusterRole},
		"subjects": []Object{{"kind": "ServiceAccount", "name": serviceAccount, "namespace": namespace}},
	})
}

// Access is what a SubjectAccessReview asks: may user do verb on resource
// (group "" is the core group) in namespace ("" is cluster-wide)?
type Access struct {
	Verb, Group, Resource, Subresource, Namespace, Name string
}

func (a Access) String() string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	if a.Namespace != "" {
		r = a.Namespace + ":" + r
	}
	return a.Verb + " " + r
}

// Can asks the API server's authorizer, as `kubectl auth can-i --as`
// does, whether a service account may do a.
func (s *Server) Can(t vaulttest.T, namespace, serviceAccount string, a Access) bool {
	t.Helper()
	user := "system:serviceaccount:" + namespace + ":" + serviceAccount
	out := s.Create(t, "/apis/authorization.k8s.io/v1/subjectaccessreviews", Object{
		"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
		"spec": Object{
			"user":   user,
			"groups": []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			"resourceAttributes": Object{"verb": a.Verb, "group": a.Group, "resource": a.Resource,
				"subresource": a.Subresource, "namespace": a.Namespace, "name": a.Name},
		},
	})
	status, _ := out["status"].(Object)
	allowed, _ := status["allowed"].(bool)
	return allowed
}

// cutPort splits host:port.
func cutPort(addr string) (string, string, bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr, "", false
	}
	return addr[:i], addr[i+1:], true
}
