// Package e2e holds end-to-end tests: the operator, a real control plane and
// real Dask, with Pods run as processes by the node agent (hack/nodeagent)
// in network namespaces. They need root and Debian's python3-distributed.
package e2e
