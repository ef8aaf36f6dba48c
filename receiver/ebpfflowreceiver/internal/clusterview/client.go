package clusterview

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Ways to authenticate to the API server (the receiver's
// kubernetes.auth_type, named as the k8sattributes processor names them).
const (
	AuthServiceAccount = "serviceAccount" // in-cluster: the pod's ServiceAccount token
	AuthKubeConfig     = "kubeConfig"     // $KUBECONFIG or ~/.kube/config, as kubectl reads it
)

// NewClient returns a client for the view. context picks a kubeconfig
// context ("" = the current one; kubeConfig only).
func NewClient(authType, context string) (kubernetes.Interface, error) {
	var (
		cfg *rest.Config
		err error
	)
	switch authType {
	case AuthServiceAccount:
		cfg, err = rest.InClusterConfig()
	case AuthKubeConfig:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	default:
		return nil, fmt.Errorf("unknown auth type %q", authType)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config (%s): %w", authType, err)
	}
	// Protobuf: lists of thousands of pods decode several times faster
	// than JSON.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.UserAgent = "ebpfflow"
	cfg.WarningHandler = rest.NoWarnings{}
	return kubernetes.NewForConfig(cfg)
}
