// Package kubetest runs a real Kubernetes control plane for the tests, as
// vaulttest runs Vault: etcd and kube-apiserver v1.34.4 (built by
// `make kube`) on loopback, with a static admin token and a service-account
// signing key, stopped with every process it starts. No kubelet runs: pods
// are API objects only. It speaks the API's REST and JSON directly; the
// tests need a handful of calls, not a client library.
package kubetest
