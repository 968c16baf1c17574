// Package cluster is the DaskCluster controller: a cluster's scheduler
// Service, scheduler Pod and default worker group, its status (phase,
// scheduler address, worker counts from its groups), idleTimeout, and the
// takeover of clusters the Python operator made (takeover.go).
package cluster

import (
	"context"
	"time"

	"github.com/dask-operator/dask-operator/pkg/resources"

	"k8s.io/client-go/tools/cache"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
)

// Controller reconciles DaskClusters.
type Controller struct {
	*controller.Base
	queue *controller.Queue

	// idleChecks holds the answers of check_idle, for idleTimeout.
	idleChecks *controller.AsyncCalls[*time.Time]
	// clusterWrites remembers the statuses written until the cache has them.
	clusterWrites *controller.LatestWrites[*daskv1.DaskCluster]
	hashes        controller.TemplateHashes
	// created remembers the children created until the cache has them.
	created     *controller.CreatedChildren
	legacyNoted *controller.NotedOnce
}

// New builds the DaskCluster controller on base's informers.
func New(base *controller.Base) (*Controller, error) {
	c := &Controller{
		Base:          base,
		idleChecks:    controller.NewAsyncCalls[*time.Time](base.Clock),
		clusterWrites: controller.NewLatestWrites[*daskv1.DaskCluster](),
		created:       controller.NewCreatedChildren(base.Clock),
		legacyNoted:   controller.NewNotedOnce(),
	}
	c.queue = controller.NewQueue("daskcluster", c.syncCluster)
	for _, s := range base.Caches.Scopes {
		if err := controller.AddHandlers(
			controller.Handler{Informer: s.Clusters, Handler: controller.OnAny(c.enqueue)},
			// A cluster's status follows its groups; its autoscaler decides
			// whether the cluster scales its default group itself.
			controller.Handler{Informer: s.Groups, Handler: controller.OnAny(c.onGroup)},
			controller.Handler{Informer: s.Autoscalers, Handler: controller.OnAny(c.onAutoscaler)},
			controller.Handler{Informer: s.Pods, Handler: cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { c.onChild("Pod", obj) },
				UpdateFunc: c.onPodUpdate,
				DeleteFunc: c.onPodDelete,
			}},
			controller.Handler{Informer: s.Services, Handler: controller.OnAny(func(obj any) { c.onChild("Service", obj) })},
			controller.Handler{Informer: s.Deployments, Handler: controller.OnAny(c.onTakeover)},
			controller.Handler{Informer: s.ReplicaSets, Handler: cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onTakeover,
				UpdateFunc: func(_, obj any) { c.onTakeover(obj) },
				DeleteFunc: c.onReplicaSetDelete,
			}},
		); err != nil {
			return nil, err
		}
	}
	// Kueue's decisions about the clusters' Workloads (queue.go).
	if base.Caches.Kueue != nil {
		if err := base.Caches.Kueue.AddHandler(controller.OnAny(c.onWorkload)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Controller) onWorkload(obj any) {
	if key, ok := controller.ControllerKey(obj, "DaskCluster"); ok {
		c.queue.Add(key)
	}
}

// onPodDelete: an evicted queued cluster gives its quota back once its
// last Pod is gone (queue.go).
func (c *Controller) onPodDelete(obj any) {
	c.onChild("Pod", obj)
	p, ok := controller.PodFromCache(obj)
	if !ok || c.Caches.Kueue == nil {
		return
	}
	if cl, err := c.Caches.Cluster(p.Namespace, p.Labels[resources.LabelClusterName]); err == nil && controller.QueuedCluster(cl) {
		c.queue.Add(p.Namespace + "/" + cl.Name)
	}
}

// Queue is the controller's workqueue, for the manager to run.
func (c *Controller) Queue() *controller.Queue { return c.queue }

// forget drops what the controller remembers of a cluster that is gone.
func (c *Controller) forget(key string) {
	c.idleChecks.Forget(key)
	c.clusterWrites.Forget(key)
	c.hashes.Forget([]string{"DaskCluster.worker", "DaskCluster.scheduler"}, key)
	c.StatusPace.Forget(controller.ClusterPaceKey(key))
	c.legacyNoted.Forget("DaskCluster/" + key)
}

func (c *Controller) enqueue(obj any) { controller.Enqueue(c.queue, obj) }

func (c *Controller) onGroup(obj any) {
	c.created.Observed("DaskWorkerGroup", obj)
	if g, ok := controller.TombstoneAs[*daskv1.DaskWorkerGroup](obj); ok {
		c.queue.Add(g.Namespace + "/" + g.Spec.Cluster)
	}
}

func (c *Controller) onAutoscaler(obj any) {
	if a, ok := controller.TombstoneAs[*daskv1.DaskAutoscaler](obj); ok {
		c.queue.Add(a.Namespace + "/" + a.Spec.Cluster)
	}
}

func (c *Controller) onPodUpdate(old, obj any) {
	if controller.Resync(old, obj) {
		return // a resync: nothing changed
	}
	c.onChild("Pod", obj)
}

// onChild handles an event of a scheduler Pod or Service, or of a Pod of
// the Python operator that a takeover waits for.
func (c *Controller) onChild(kind string, obj any) {
	c.created.Observed(kind, obj)
	if key, ok := controller.ControllerKey(obj, "DaskCluster"); ok {
		c.queue.Add(key)
		return
	}
	c.onTakeover(obj)
}

func (c *Controller) onTakeover(obj any) {
	if ns, cluster, _, ok := controller.TakeoverOf(obj); ok {
		c.queue.Add(ns + "/" + cluster)
	}
}

func (c *Controller) onReplicaSetDelete(obj any) {
	if m, err := controller.MetaOf(obj); err == nil {
		c.Incumbents.ForgetReplicaSet(m.GetUID())
	}
	c.onTakeover(obj)
}

// Sync reconciles one object by its key ("namespace/name"), as the queue's
// workers do; a positive duration asks for another sync after that long.
func (c *Controller) Sync(ctx context.Context, key string) (time.Duration, error) {
	return c.syncCluster(ctx, key)
}
