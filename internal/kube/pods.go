package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Pod is what the agent keeps of a pod.
type Pod struct {
	Namespace, Name, UID string
	ServiceAccount       string
}

// Why an address names no pod: a bounded set, used as a metric attribute.
const (
	// NoPod: no pod of this node has the address (yet: a pod's IP is
	// known shortly after it starts).
	NoPod = "no_pod"
	// HostNetwork: the address is a host-network pod's, which is the
	// node's: any process on the node could have sent it.
	HostNetwork = "host_network"
	// Terminating: the pod is being deleted; its address may be reused.
	Terminating = "terminating"
	// Ambiguous: more than one pod has the address.
	Ambiguous = "ambiguous"
)

const byIP = "ip"

// PodIndex is the pods of one node by IP, kept by a watch.
type PodIndex struct {
	informer cache.SharedIndexInformer
}

// NewPodIndex watches the pods of node (a field selector: the API server
// sends no other node's pods).
func NewPodIndex(client kubernetes.Interface, node string) *PodIndex {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	_ = inf.SetTransform(slim) // before it runs, it cannot fail
	_ = inf.AddIndexers(cache.Indexers{byIP: podIPs})
	return &PodIndex{informer: inf}
}

// Run keeps the index until ctx ends.
func (p *PodIndex) Run(ctx context.Context) { p.informer.RunWithContext(ctx) }

// WaitSynced waits until the index holds every pod of the node, or ctx ends.
func (p *PodIndex) WaitSynced(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), p.informer.HasSynced)
}

// Synced says whether the index holds every pod of the node.
func (p *PodIndex) Synced() bool { return p.informer.HasSynced() }

// ByIP names the one running pod with address ip, or says why none.
// A map read under the index's read lock: no request to the API server.
func (p *PodIndex) ByIP(ip string) (Pod, string) {
	objs, err := p.informer.GetIndexer().ByIndex(byIP, ip)
	if err != nil || len(objs) == 0 {
		return Pod{}, NoPod
	}
	if len(objs) > 1 {
		return Pod{}, Ambiguous
	}
	pod := objs[0].(*corev1.Pod)
	switch {
	case pod.Spec.HostNetwork:
		return Pod{}, HostNetwork
	case pod.DeletionTimestamp != nil:
		return Pod{}, Terminating
	}
	return Pod{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), ServiceAccount: serviceAccount(pod)}, ""
}

func serviceAccount(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName == "" {
		return "default"
	}
	return pod.Spec.ServiceAccountName
}

// podIPs indexes a pod under each of its addresses, while it may hold
// them: a finished pod's addresses go back to the node.
func podIPs(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil, nil
	}
	var ips []string
	for _, a := range pod.Status.PodIPs {
		ips = append(ips, a.IP)
	}
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = append(ips, pod.Status.PodIP)
	}
	return ips, nil
}

// slim keeps of a pod only what ByIP reads: a node's pods cost little memory.
func slim(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec:   corev1.PodSpec{ServiceAccountName: pod.Spec.ServiceAccountName, HostNetwork: pod.Spec.HostNetwork, NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{Phase: pod.Status.Phase, PodIP: pod.Status.PodIP, PodIPs: pod.Status.PodIPs},
	}, nil
}
