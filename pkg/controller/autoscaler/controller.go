// Package autoscaler is the DaskAutoscaler controller: it asks a cluster's
// scheduler how many workers it wants (adaptive_target) and scales the
// cluster's default worker group within the autoscaler's bounds, with a
// cooldown and a stabilization window for scale-down (autoscale_decision.go).
package autoscaler

import (
	"context"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/dask-operator/dask-operator/pkg/controller"
)

// Controller reconciles DaskAutoscalers.
type Controller struct {
	*controller.Base
	queue *controller.Queue

	// targets holds the answers of adaptive_target.
	targets *controller.AsyncCalls[int]
	// autoscale remembers each autoscaler's recent targets and changes.
	autoscale *autoscaleMemory
}

// New builds the DaskAutoscaler controller on base's informers.
func New(base *controller.Base) (*Controller, error) {
	c := &Controller{
		Base:      base,
		targets:   controller.NewAsyncCalls[int](base.Clock),
		autoscale: newAutoscaleMemory(),
	}
	c.queue = controller.NewQueue("daskautoscaler", c.syncAutoscaler)
	for _, s := range base.Caches.Scopes {
		if err := controller.AddHandlers(
			controller.Handler{Informer: s.Autoscalers, Handler: controller.OnAny(c.enqueue)},
			// Autoscalers follow their cluster's spec.
			controller.Handler{Informer: s.Clusters, Handler: cache.ResourceEventHandlerFuncs{
				AddFunc: c.onCluster,
				UpdateFunc: func(old, obj any) {
					if controller.ClusterSpecChanged(old, obj) {
						c.onCluster(obj)
					}
				},
				DeleteFunc: c.onCluster,
			}},
		); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Queue is the controller's workqueue, for the manager to run.
func (c *Controller) Queue() *controller.Queue { return c.queue }

// forget drops what the controller remembers of an autoscaler that is gone.
func (c *Controller) forget(key string) {
	c.autoscale.forget(key)
	c.targets.Forget(key)
}

func (c *Controller) enqueue(obj any) { controller.Enqueue(c.queue, obj) }

func (c *Controller) onCluster(obj any) {
	m, err := controller.MetaOf(obj)
	if err != nil {
		return
	}
	for _, a := range c.Caches.AutoscalersOf(m.GetNamespace(), m.GetName()) {
		c.enqueue(a)
	}
}

// Sync reconciles one object by its key ("namespace/name"), as the queue's
// workers do; a positive duration asks for another sync after that long.
func (c *Controller) Sync(ctx context.Context, key string) (time.Duration, error) {
	return c.syncAutoscaler(ctx, key)
}
