package controller

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// TemplateHashes remembers template hashes with the object generation they
// were computed for: a Pod spec is hashed (marshalled) once per change of
// its object, not on every sync. Keys are "<kind>/<namespace>/<name>".
type TemplateHashes struct{ m sync.Map }

func (h *TemplateHashes) of(key string, obj metav1.Object, spec *corev1.PodSpec) string {
	if v, ok := h.m.Load(key); ok {
		if e := v.(hashEntry); e.uid == obj.GetUID() && e.generation == obj.GetGeneration() && obj.GetGeneration() != 0 {
			return e.hash
		}
	}
	hash := resources.TemplateHash(spec)
	h.m.Store(key, hashEntry{uid: obj.GetUID(), generation: obj.GetGeneration(), hash: hash})
	return hash
}

// Worker is the template hash of a group's workers.
func (h *TemplateHashes) Worker(key string, g *daskv1.DaskWorkerGroup) string {
	return h.of("DaskWorkerGroup/"+key, g, &g.Spec.Worker.Spec)
}

// ClusterWorker and scheduler are a cluster's default-group and scheduler
// template hashes.
func (h *TemplateHashes) ClusterWorker(c *daskv1.DaskCluster) string {
	return h.of("DaskCluster.worker/"+c.Namespace+"/"+c.Name, c, &c.Spec.Worker.Spec)
}

func (h *TemplateHashes) Scheduler(c *daskv1.DaskCluster) string {
	return h.of("DaskCluster.scheduler/"+c.Namespace+"/"+c.Name, c, &c.Spec.Scheduler.Spec)
}

// Forget drops the hashes of an object ("<namespace>/<name>") that is gone.
func (h *TemplateHashes) Forget(kinds []string, key string) {
	for _, k := range kinds {
		h.m.Delete(k + "/" + key)
	}
}
