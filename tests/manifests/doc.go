// Package manifests checks the Kubernetes manifests in distribution/k8s
// and the Helm chart they are rendered from, without a cluster: the plain
// manifests equal the chart's rendering, strict decoding into the API types
// (unknown or misspelt fields fail), the security properties the DaemonSet
// promises, exactly the RBAC it needs, and what the chart's values change.
// (The API server's own dry-run of them is in tests/e2e.)
package manifests
