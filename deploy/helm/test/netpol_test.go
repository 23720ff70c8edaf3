package helmtest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// peers writes NetworkPolicy peers compactly: ns{k=v} pod{k=v}, so that an
// expectation reads as the values a user writes.
func peers(ps []networkingv1.NetworkPolicyPeer) []string {
	var out []string
	for _, p := range ps {
		var parts []string
		if p.NamespaceSelector != nil {
			parts = append(parts, "ns"+selectorString(p.NamespaceSelector))
		}
		if p.PodSelector != nil {
			parts = append(parts, "pod"+selectorString(p.PodSelector))
		}
		if p.IPBlock != nil {
			parts = append(parts, "ip{"+p.IPBlock.CIDR+"}")
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func selectorString(s *metav1.LabelSelector) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(s.MatchLabels)) {
		kv = append(kv, k+"="+s.MatchLabels[k])
	}
	if len(s.MatchExpressions) > 0 {
		kv = append(kv, fmt.Sprint(s.MatchExpressions))
	}
	return "{" + strings.Join(kv, ",") + "}"
}

// TestNetworkPolicies: each workload's pods are selected by exactly one
// policy; the gateway's OTLP ports are open to the chart's agents (pods of
// this release, in its namespace) and gatewayOtlpFrom only, the agents'
// to agentOtlpFrom, the metrics port of both to metricsFrom only; no rule
// opens another port, and none is open to everyone.
func TestNetworkPolicies(t *testing.T) {
	for _, set := range valueSets(t) {
		t.Run(set.name, func(t *testing.T) {
			e := expectationsFor(t, set)
			r := render(t, set)
			agent, gateway := r.workloads(t)
			if len(r.netpols) != 2 {
				t.Fatalf("want a NetworkPolicy for the agents and one for the gateway, got %v", sortedKeys(r.netpols))
			}
			agentOnly := []string{fmt.Sprintf("pod{%s}", labelString(agent.selector))}
			checkPolicy(t, r, gateway, agent, map[string][]string{
				"otlp-grpc": append(agentOnly, e.gatewayOtlpFrom...),
				"otlp-http": append(agentOnly, e.gatewayOtlpFrom...),
				"metrics":   e.metricsFrom,
			})
			checkPolicy(t, r, agent, gateway, map[string][]string{
				"otlp-grpc": e.agentOtlpFrom, "otlp-http": e.agentOtlpFrom, "metrics": e.metricsFrom,
			})
		})
	}
}

func labelString(m map[string]string) string {
	return strings.TrimSuffix(strings.TrimPrefix(selectorString(&metav1.LabelSelector{MatchLabels: m}), "{"), "}")
}

// checkPolicy checks the one policy selecting w's pods (and not other's):
// the peers each named port is open to are exactly want's.
func checkPolicy(t *testing.T, r *rendered, w, other workload, want map[string][]string) {
	t.Helper()
	var selecting []*networkingv1.NetworkPolicy
	for _, np := range r.netpols {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Matches(labels.Set(w.labels)) {
			selecting = append(selecting, np)
		}
		if sel.Matches(labels.Set(other.labels)) && sel.Matches(labels.Set(w.labels)) {
			t.Errorf("NetworkPolicy %s selects both the agents and the gateway", np.Name)
		}
	}
	if len(selecting) != 1 {
		t.Fatalf("%s pods: selected by %d NetworkPolicies, want 1", w.component, len(selecting))
	}
	np := selecting[0]
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy %s: policyTypes %v, want [Ingress]", np.Name, np.Spec.PolicyTypes)
	}
	got := map[string][]string{}
	c := w.container(t)
	for i, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 || len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy %s rule %d: open to every source or on every port: %+v", np.Name, i, rule)
			continue
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP {
				t.Errorf("NetworkPolicy %s rule %d: port %+v", np.Name, i, p)
				continue
			}
			name := p.Port.StrVal
			containerPort(t, c, name) // the port names one the container declares
			got[name] = append(got[name], peers(rule.From)...)
		}
	}
	for port, wantPeers := range want {
		if len(wantPeers) == 0 {
			if len(got[port]) != 0 {
				t.Errorf("NetworkPolicy %s: port %s open to %v, want closed", np.Name, port, got[port])
			}
			continue
		}
		if !slices.Equal(got[port], wantPeers) {
			t.Errorf("NetworkPolicy %s: port %s open to %v, want %v", np.Name, port, got[port], wantPeers)
		}
	}
	for port := range got {
		if _, ok := want[port]; !ok {
			t.Errorf("NetworkPolicy %s: port %s opened", np.Name, port)
		}
	}
}
