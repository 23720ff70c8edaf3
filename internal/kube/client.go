package kube

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// How the agent reaches the API server (the names of contrib's k8sconfig).
const (
	// AuthServiceAccount is the pod's own service account (in-cluster).
	AuthServiceAccount = "serviceAccount"
	// AuthKubeConfig is the kubeconfig file in $KUBECONFIG (or ~/.kube/config).
	AuthKubeConfig = "kubeConfig"
)

// NewClient connects to the API server as authType says.
func NewClient(authType string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch authType {
	case AuthServiceAccount:
		cfg, err = rest.InClusterConfig()
	case AuthKubeConfig:
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	default:
		return nil, fmt.Errorf("auth_type: unknown %q (want %s or %s)", authType, AuthServiceAccount, AuthKubeConfig)
	}
	if err != nil {
		return nil, fmt.Errorf("auth_type %s: %w", authType, err)
	}
	cfg.UserAgent = "otelcol-vaultlightstep"
	return kubernetes.NewForConfig(cfg)
}
