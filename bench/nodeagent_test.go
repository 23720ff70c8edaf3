package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
	"github.com/vaultlightstep/vaultlightstep/internal/kubetest"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor"
)

// nodeAgent is a node's agent against a real kube-apiserver and Vault:
// workloads' pods on node-a (127.0.0.2, .3, ...), each with its own service
// account whose entity exists from its own Kubernetes login, and a Vault
// token of the agent's pod-identity policy.
type nodeAgent struct {
	v     *vaulttest.Server
	token string // the agent's Vault token
}

func newNodeAgent(tb testing.TB, workloads int) *nodeAgent {
	k := kubetest.Start(tb)
	v := vaulttest.Start(tb)
	k.Namespace(tb, "apps", nil)
	k.Namespace(tb, "obs", nil)
	k.ServiceAccount(tb, "obs", "reviewer")
	k.BindClusterRole(tb, "reviewer", "system:auth-delegator", "obs", "reviewer")
	v.EnableAuth(tb, "kubernetes", "kubernetes")
	v.Write(tb, "auth/kubernetes/config", map[string]any{"kubernetes_host": k.URL, "kubernetes_ca_cert": k.CAPEM,
		"disable_local_ca_jwt": true, "token_reviewer_jwt": k.Token(tb, "obs", "reviewer", kubetest.TokenOptions{})})
	v.Write(tb, "auth/kubernetes/role/apps", map[string]any{"bound_service_account_names": "*",
		"bound_service_account_namespaces": "apps", "alias_name_source": "serviceaccount_name", "token_policies": "default"})
	for i := range workloads {
		sa := fmt.Sprint("w", i)
		k.ServiceAccount(tb, "apps", sa)
		if _, err := v.ClientWithToken(tb, "").Logical().Write("auth/kubernetes/login",
			map[string]any{"role": "apps", "jwt": k.Token(tb, "apps", sa, kubetest.TokenOptions{})}); err != nil {
			tb.Fatal(err)
		}
		k.Pod(tb, kubetest.PodSpec{Namespace: "apps", Name: sa, Node: "node-a", ServiceAccount: sa, IP: podIP(i)})
	}
	k.ClusterRole(tb, "pods", kubetest.Object{"apiGroups": []string{""}, "resources": []string{"pods"}, "verbs": []string{"get", "list", "watch"}})
	k.ServiceAccount(tb, "obs", "agent")
	k.BindClusterRole(tb, "agent-pods", "pods", "obs", "agent")
	if err := os.Setenv("KUBECONFIG", k.Kubeconfig(tb, k.Token(tb, "obs", "agent", kubetest.TokenOptions{}))); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.Unsetenv("KUBECONFIG") })
	hcl, err := os.ReadFile("../examples/vault/pod-identity.hcl")
	if err != nil {
		tb.Fatal(err)
	}
	v.PutPolicy(tb, "pod-identity", string(hcl))
	// The agent's login: an entity of its own (its own identity), and the
	// pod-identity policy.
	return &nodeAgent{v: v, token: v.UserpassWorkload(tb, "otel-agents", "pod-identity").Token}
}

func podIP(i int) string { return fmt.Sprint("127.0.0.", i+2) }

// start runs the agent's vaultauth in kubernetes_pods mode, reaching Vault
// at addr, with cache_ttl.
func (n *nodeAgent) start(tb testing.TB, addr string, cacheTTL time.Duration) extensionauth.Server {
	return startExtension(tb, vaultauthextension.NewFactory(), map[string]any{
		"vault": map[string]any{"address": addr},
		"auth":  map[string]any{"method": "token", "token": n.token},
		"server": map[string]any{"cache_ttl": cacheTTL.String(), "kubernetes_pods": map[string]any{
			"node_name": "node-a", "auth_type": "kubeConfig", "alias_name_source": "serviceaccount_name"}},
	}).(extensionauth.Server)
}

// fromPod is a request's context as the receiver makes it for a
// connection from ip.
func fromPod(ip string) context.Context {
	return client.NewContext(context.Background(), client.Info{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
}

// BenchmarkNodeAgentRequest is the agent's cost per request of one
// resource of 100 spans: today's path (vaultidentity stamps the agent's
// own identity, from: extension) beside the per-workload path (vaultauth
// finds the connection's pod and its entity, cached, then vaultidentity
// stamps it, from: auth), and the association alone.
func BenchmarkNodeAgentRequest(b *testing.B) {
	n := newNodeAgent(b, 1)
	pods := n.start(b, n.v.Addr, 5*time.Minute)
	self := startExtension(b, vaultauthextension.NewFactory(), map[string]any{
		"vault":  map[string]any{"address": n.v.Addr},
		"auth":   map[string]any{"method": "token", "token": n.token},
		"client": map[string]any{"identity_token": map[string]any{"role": "unused"}},
	})
	selfID := component.MustNewIDWithName("vaultauth", "self")
	host := pipelinetest.NewHost(map[component.ID]component.Component{selfID: self})
	f := vaultidentityprocessor.NewFactory()
	newProc := func(conf map[string]any, host component.Host) processor.Traces {
		p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), config(b, f, conf), consumertest.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Start(context.Background(), host); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
		return p
	}
	own := newProc(map[string]any{"from": "extension", "extension": selfID.String()}, host)
	fromAuth := newProc(map[string]any{"from": "auth"}, host)
	td := requestOf(100)
	ctx := fromPod(podIP(0))
	deadline := time.Now().Add(20 * time.Second)
	for { // the first request waits for the pod watch and the entity lookup
		if _, err := pods.Authenticate(ctx, nil); err == nil {
			break
		} else if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for own.ConsumeTraces(context.Background(), td) != nil { // the agent's own identity, once logged in
		if time.Now().After(deadline) {
			b.Fatal("no own identity")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Run("path=own-identity", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := own.ConsumeTraces(context.Background(), td); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("path=pod-identity", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			authed, err := pods.Authenticate(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := fromAuth.ConsumeTraces(authed, td); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("path=association-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pods.Authenticate(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// requestOf is one resource of n spans, as an SDK's batch sends it.
func requestOf(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "payments")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for range n {
		spans.AppendEmpty().SetName("op")
	}
	return td
}

// TestNodeAgentVaultCalls measures the agent's Vault calls per workload
// over time: requests from every workload's pod every 10 ms for 3 s, with
// cache_ttl 500ms. The model (docs/scaling.md): one sys/auth read per
// agent, and one identity/lookup/entity per workload per cache_ttl.
func TestNodeAgentVaultCalls(t *testing.T) {
	const workloads, ttl, run = 5, 500 * time.Millisecond, 3 * time.Second
	n := newNodeAgent(t, workloads)
	proxy := vaulttest.NewCountingProxy(t, n.v)
	pods := n.start(t, proxy.Addr, ttl)
	deadline := time.Now().Add(20 * time.Second)
	for i := range workloads {
		for {
			if _, err := pods.Authenticate(fromPod(podIP(i)), nil); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	before, requests := proxy.Count("identity/lookup/entity"), 0
	end := time.Now().Add(run)
	for time.Now().Before(end) {
		for i := range workloads {
			if _, err := pods.Authenticate(fromPod(podIP(i)), nil); err != nil {
				t.Fatal(err)
			}
			requests++
		}
		time.Sleep(10 * time.Millisecond) // a request per workload every 10 ms
	}
	lookups := proxy.Count("identity/lookup/entity") - before
	model := workloads * int(run/ttl)
	t.Logf("%d workloads, %d requests in %s, cache_ttl %s: %d entity lookups (model %d: one per workload per cache_ttl; %.2f per workload per cache_ttl), %d sys/auth reads",
		workloads, requests, run, ttl, lookups, model, float64(lookups)/float64(workloads)/float64(run/ttl), proxy.Count("sys/auth/kubernetes"))
	if lookups > model+workloads {
		t.Errorf("%d lookups, above the model's %d (+%d)", lookups, model, workloads)
	}
}
