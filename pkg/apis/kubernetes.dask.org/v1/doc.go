// Package v1 holds the kubernetes.dask.org/v1 API: DaskCluster, DaskWorkerGroup,
// DaskJob and DaskAutoscaler. The JSON names match the resources of the Python
// dask-kubernetes operator, so its YAML and its KubeCluster client work unchanged.
//
// +k8s:deepcopy-gen=package
// +groupName=kubernetes.dask.org
package v1
