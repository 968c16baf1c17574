// Package integration tests the operator on a real control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok, from
// pkg/testenv) and, where Dask is involved, against real Dask schedulers
// and workers (Debian's python3-distributed) on loopback.
package integration
