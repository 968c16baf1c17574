// Package testobjects builds the objects the controllers' unit tests start
// from: clusters, groups, worker Pods in a given state, jobs, and what the
// Python operator makes of a cluster.
package testobjects
