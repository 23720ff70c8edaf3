// Package kube is what the node agent knows of the pods on its node: a
// watch of the API server (client-go's informer, limited to the node's
// pods), indexed by pod IP, so that a connection's peer address names the
// pod, and so its service account, without a request to the API server.
package kube // import "github.com/vaultlightstep/vaultlightstep/internal/kube"
