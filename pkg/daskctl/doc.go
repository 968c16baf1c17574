// Package daskctl offers, to Go programs, what the kubectl dask plugin
// does: build a DaskCluster as the Python KubeCluster client's
// make_cluster_spec does, create, scale, adapt and delete clusters, submit
// and wait for DaskJobs, stream a cluster's logs and port-forward to its
// scheduler with reconnects. It uses the generated clientset and imports
// none of the operator's controllers.
package daskctl
