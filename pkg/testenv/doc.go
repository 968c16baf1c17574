// Package testenv runs a real Kubernetes control plane on loopback for
// integration tests and local development: etcd, kube-apiserver,
// kube-controller-manager (garbage collector, namespace and service account
// controllers) and, when asked, kube-scheduler with kwok serving one fake node
// so that Pods become Running and Ready.
//
// The binaries are built from the Go module proxy by hack/tools.sh and cached;
// Start builds them on first use. Every process runs in its own process group
// and is killed when the environment stops or the test binary dies.
package testenv
