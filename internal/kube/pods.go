package kube

import (
	"context"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Pod is what the agent keeps of a pod.
type Pod struct {
	Namespace, Name, UID string
	ServiceAccount       string
	// Account is <namespace>/<service account>, built once per pod.
	Account string

	hostNetwork, terminating bool
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

// PodIndex is the pods of one node by IP, kept by a watch. Lookups are a
// map read under a read lock the watch's handlers hold only to swap a
// pod's entries: no allocation, no request to the API server.
type PodIndex struct {
	informer cache.SharedIndexInformer

	mu    sync.RWMutex
	byIP  map[netip.Addr][]*Pod
	ipsOf map[types.UID][]netip.Addr // to remove a pod's old addresses
}

// NewPodIndex watches the pods of node (a field selector: the API server
// sends no other node's pods).
func NewPodIndex(client kubernetes.Interface, node string) *PodIndex {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		}))
	p := &PodIndex{informer: factory.Core().V1().Pods().Informer(),
		byIP: map[netip.Addr][]*Pod{}, ipsOf: map[types.UID][]netip.Addr{}}
	_ = p.informer.SetTransform(slim) // before it runs, it cannot fail
	_, _ = p.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.set(obj) },
		UpdateFunc: func(_, obj any) { p.set(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				p.remove(pod.UID)
			}
		},
	})
	return p
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
func (p *PodIndex) ByIP(ip netip.Addr) (*Pod, string) {
	p.mu.RLock()
	pods := p.byIP[ip.Unmap()]
	var pod *Pod
	if len(pods) == 1 {
		pod = pods[0]
	}
	p.mu.RUnlock()
	switch {
	case len(pods) == 0:
		return nil, NoPod
	case pod == nil:
		return nil, Ambiguous
	case pod.hostNetwork:
		return nil, HostNetwork
	case pod.terminating:
		return nil, Terminating
	}
	return pod, ""
}

// set records a pod under the addresses it holds now, and under no other.
func (p *PodIndex) set(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(pod.UID)
	ips := podIPs(pod)
	if len(ips) == 0 {
		return
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	entry := &Pod{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), ServiceAccount: sa,
		Account: pod.Namespace + "/" + sa, hostNetwork: pod.Spec.HostNetwork, terminating: pod.DeletionTimestamp != nil}
	for _, ip := range ips {
		p.byIP[ip] = append(p.byIP[ip], entry)
	}
	p.ipsOf[pod.UID] = ips
}

func (p *PodIndex) remove(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(uid)
}

func (p *PodIndex) removeLocked(uid types.UID) {
	for _, ip := range p.ipsOf[uid] {
		kept := p.byIP[ip][:0:0]
		for _, e := range p.byIP[ip] {
			if e.UID != string(uid) {
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			delete(p.byIP, ip)
		} else {
			p.byIP[ip] = kept
		}
	}
	delete(p.ipsOf, uid)
}

// podIPs are the addresses a pod holds while it may hold them: a finished
// pod's addresses go back to the node.
func podIPs(pod *corev1.Pod) []netip.Addr {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	var ips []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, a.Unmap())
		}
	}
	for _, a := range pod.Status.PodIPs {
		add(a.IP)
	}
	if len(ips) == 0 && pod.Status.PodIP != "" {
		add(pod.Status.PodIP)
	}
	return ips
}

// slim keeps of a pod only what the index reads: a node's pods cost
// little memory in the informer's store.
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
