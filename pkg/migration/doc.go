// Package migration tests moving from the Python (kopf) operator of
// dask-kubernetes to this one while its clusters run: the real kopf operator
// (from ../shared/incumbent) makes clusters on a real control plane with the
// Deployment and ReplicaSet controllers and real Dask on the process node,
// it is stopped, and this operator takes the clusters over.
package migration
