// Package controller is what the operator's controllers share, as
// kube-controller-manager's pkg/controller is for its controllers: the
// informer caches (Caches), the rate-limited workqueue (Queue), the Base
// every kind's controller embeds (clients, recorder, options, clock, the
// pacing of status writes), one way to create a child (CreateChild) and to
// write a status (WriteStatus), conditions, errors a sync returns, and the
// small memories a sync keeps until the cache catches up.
//
// Each Dask kind has its controller in a package of its own (cluster,
// workergroup, job, autoscaler), with its own queue and per-key memory;
// none imports another. The manager package builds them on one Base and
// runs them. In each, event handlers only enqueue keys; sync functions read
// the informer caches, compare what exists with what is wanted and repair
// the difference (level-triggered), and write status only when it changed.
package controller
