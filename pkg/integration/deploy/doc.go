// Package deploy tests the operator as it is shipped: the built binary, run
// as a separate process under the ServiceAccount and RBAC of manifests/,
// with leader election, probes and metrics, on a real control plane.
package deploy
