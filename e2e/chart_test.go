package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.yaml.in/yaml/v3"

	"github.com/vaultlightstep/vaultlightstep/internal/kubetest"
	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// The chart as the API server stores it, running. The chart is installed
// into a real kube-apiserver (namespace enforcing the restricted Pod
// Security Standard) with the values docs/kubernetes.md has users set, and
// Vault's Kubernetes auth is set up as its steps 2 and 4 say (a reviewer
// token; roles bound to the chart's service accounts; the agents' named
// entity). No kubelet runs here, so the test plays it: each collector runs
// as a host process from its ConfigMap, Secret and environment read back
// from the API server, with a token minted for the chart's own service
// account where the kubelet mounts it. What differs from a pod is only the
// network: loopback ports instead of 0.0.0.0, and the agent dialling the
// gateway's loopback port with the Service's name as the TLS server name
// (agent.gatewayServerName), since the Service name does not resolve here.
// Spans flow agent → gateway → Lightstep stand-in over the chart's TLS,
// stamped with the agents' entity, the senders' forgeries scrubbed.
func TestChartRunsFromTheAPIServer(t *testing.T) {
	const release, ns = "otel", "observability"
	agentSA, gatewaySA := release+"-vaultlightstep-agent", release+"-vaultlightstep-gateway"
	k := kubetest.Start(t)
	v := vaulttest.Start(t)
	v.EnableFileAudit(t) // the gateway hashes senders' credentials with it
	audience := testbed.ConfigureVault(t, v, v.Addr)
	testbed.TokenWriter(t, v)("ls-token-v1")
	sink := testbed.StartSink(t)
	standIn := testbed.StartStandIn(t, sink, "ls-token-v1")
	agentsEntity := kubernetesAuth(t, k, v, ns, agentSA, gatewaySA)

	k.Namespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	gatewayGRPC := testbed.FreeAddr(t)
	for _, obj := range helmTemplate(t, release, ns,
		"vault.address="+v.Addr, "gateway.agentAudience="+audience,
		"gateway.lightstep.endpoint="+standIn.OTLPGRPC, "gateway.lightstep.insecure=true",
		"agent.gatewayEndpoint="+gatewayGRPC, "agent.gatewayServerName="+gatewaySA+"."+ns+".svc") {
		code, out, warnings := k.Submit(t, ns, obj)
		require.Equal(t, http.StatusCreated, code, "%v %v: %v", obj["kind"], dig(obj, "metadata", "name"), out["message"])
		require.Empty(t, warnings)
	}

	gw := runnable(t, k, ns, "StatefulSet", gatewaySA)
	env := onLoopback(gw.env)
	env["OTLP_GRPC_ENDPOINT"] = gatewayGRPC
	gateway := testbed.StartCollector(t, "gateway", gw.configs[0], env, append(gw.configs[1:], gw.kubeletToken(t))...)
	ag := runnable(t, k, ns, "DaemonSet", agentSA)
	// The pod watch: in a pod, client-go reads the mounted token and the
	// KUBERNETES_SERVICE_* environment; here a kubeconfig with that token.
	env = onLoopback(ag.env)
	env["KUBE_AUTH_TYPE"] = "kubeConfig"
	env["KUBECONFIG"] = k.Kubeconfig(t, readFile(t, ag.path(saTokenDir+"/token")))
	agent := testbed.StartCollector(t, "agent", ag.configs[0], env, append(ag.configs[1:], ag.kubeletToken(t))...)

	// A workload pod on the agent's node, whose service account has its
	// Vault entity (from its own login), and a process that is no pod.
	k.Namespace(t, "shop", nil)
	k.ServiceAccount(t, "shop", "payments")
	sec, err := v.ClientWithToken(t, "").Logical().Write("auth/kubernetes/login", map[string]any{
		"role": "shop", "jwt": k.Token(t, "shop", "payments", kubetest.TokenOptions{})})
	require.NoError(t, err)
	k.Pod(t, kubetest.PodSpec{Namespace: "shop", Name: "payments-1", Node: node, ServiceAccount: "payments", IP: "127.0.0.2"})
	workload := newPodSender(t, "127.0.0.2", agent.OTLPGRPC, 1)
	var ids []pcommon.SpanID
	for range 10 {
		var id pcommon.SpanID
		require.Eventually(t, func() bool { id, err = workload.send("ent-FORGED"); return err == nil }, eventually, poll,
			"the agent refused the workload's spans: %v\n%s", err, agent.LogTail(20))
		ids = append(ids, id)
	}
	process := testbed.NewSender(t, "node-process", 0, agent.OTLPGRPC)
	for range 10 {
		require.True(t, process.Send(5), "the agent refused spans")
	}

	require.Eventually(t, func() bool { return sink.Count() >= len(process.Sent())+len(ids) }, eventually, poll,
		"spans lost: %d sent, %d arrived\nagent:\n%s\ngateway:\n%s", len(process.Sent())+len(ids), sink.Count(), agent.LogTail(20), gateway.LogTail(20))
	check := func(ids []pcommon.SpanID, entity, voucher string) {
		for _, id := range ids {
			span, ok := sink.Span(id)
			require.True(t, ok)
			assert.Equal(t, []string{entity}, span.Resource.Values("vault.entity.id"))
			assert.Equal(t, nonEmpty(voucher), span.Resource.Values("vault.vouched_by.entity.name"))
			hmacs := span.Resource.Values("vault.credential.hmac")
			require.Len(t, hmacs, 1)
			assert.NotEqual(t, testbed.ForgedHMAC, hmacs[0], "the sender's forged join key survived")
		}
	}
	check(ids, sec.Auth.EntityID, "otel-agents")
	check(process.Sent(), agentsEntity, "")
	t.Logf("%d spans arrived at the stand-in: %d of a workload pod stamped with its own service account's entity, vouched by the agents; "+
		"%d of a process that is no pod (unidentified: pass) with the agents' entity", sink.Count(), len(ids), len(process.Sent()))
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// kubernetesAuth sets up Vault's Kubernetes auth as docs/kubernetes.md
// does: a reviewer service account's token, one role per component bound
// to its service account, and the agents' entity named by its alias.
func kubernetesAuth(t *testing.T, k *kubetest.Server, v *vaulttest.Server, ns, agentSA, gatewaySA string) (agentsEntity string) {
	t.Helper()
	k.Namespace(t, "vault", nil)
	k.ServiceAccount(t, "vault", "vault-reviewer")
	k.BindClusterRole(t, "vault-reviewer", "system:auth-delegator", "vault", "vault-reviewer")
	v.EnableAuth(t, "kubernetes", "kubernetes")
	v.Write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host": k.URL, "kubernetes_ca_cert": k.CAPEM, "disable_local_ca_jwt": true,
		"token_reviewer_jwt": k.Token(t, "vault", "vault-reviewer", kubetest.TokenOptions{}),
	})
	for role, binding := range map[string][2]string{
		"otel-agent":   {agentSA, "otel-identity,pod-identity"},
		"otel-gateway": {gatewaySA, "lightstep-reader,audit-hash"},
	} {
		v.Write(t, "auth/kubernetes/role/"+role, map[string]any{
			"bound_service_account_names": binding[0], "bound_service_account_namespaces": ns,
			"alias_name_source": "serviceaccount_name", "token_policies": binding[1], "token_ttl": "1h", "token_max_ttl": "24h",
		})
	}
	id := v.Write(t, "identity/entity", map[string]any{"name": "otel-agents", "metadata": map[string]any{"team": "platform"}}).Data["id"]
	accessor := v.Read(t, "sys/auth").Data["kubernetes/"].(map[string]any)["accessor"]
	v.Write(t, "identity/entity-alias", map[string]any{"name": ns + "/" + agentSA, "canonical_id": id, "mount_accessor": accessor})
	// The workloads' role (docs/kubernetes.md: their own logins make their entities).
	v.Write(t, "auth/kubernetes/role/shop", map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "shop",
		"token_policies": "default", "token_ttl": "5m"})
	return id.(string)
}

// onLoopback is a pod's environment for a host process: the listeners
// StartCollector puts on loopback ports instead of the pod's 0.0.0.0.
func onLoopback(env map[string]string) map[string]string {
	out := map[string]string{"METRICS_HOST": "127.0.0.1"}
	for k, v := range env {
		switch k {
		case "OTLP_GRPC_ENDPOINT", "OTLP_HTTP_ENDPOINT", "HEALTH_ENDPOINT", "METRICS_HOST", "METRICS_PORT":
		default:
			out[k] = v
		}
	}
	return out
}

// kubeletToken writes a config overlay pointing each vaultauth instance
// that logs in with method kubernetes at the token runnable put where the
// kubelet mounts it (the collector's default jwt_file is that path, which
// this host process cannot have).
func (p *hostPod) kubeletToken(t *testing.T) string {
	t.Helper()
	exts := map[string]any{}
	for _, file := range p.configs {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var cfg struct {
			Extensions map[string]struct {
				Auth struct{ Method string } `yaml:"auth"`
			} `yaml:"extensions"`
		}
		require.NoError(t, yaml.Unmarshal(b, &cfg))
		for name, ext := range cfg.Extensions {
			if ext.Auth.Method == "kubernetes" {
				exts[name] = map[string]any{"auth": map[string]any{"jwt_file": p.path(saTokenDir + "/token")}}
			}
		}
	}
	require.NotEmpty(t, exts, "no vaultauth instance logs in with method kubernetes")
	b, err := yaml.Marshal(map[string]any{"extensions": exts})
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "kubelet-token.yaml")
	require.NoError(t, os.WriteFile(out, b, 0o600))
	return out
}
