// Package manifests checks the Kubernetes manifests in distribution/k8s
// without a cluster: strict decoding into the API types (unknown or misspelt
// fields fail) and the security properties the DaemonSet promises.
package manifests
