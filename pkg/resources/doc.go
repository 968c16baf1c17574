// Package resources builds the Kubernetes objects the operator creates for
// Dask resources: scheduler Pods and Services, default worker groups, worker
// Pods, job-runner Pods and job clusters. Every function here is pure: the
// same input gives the same object, so they are tested without a cluster.
package resources
