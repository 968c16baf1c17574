package resources

import (
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Labels the operator sets on what it creates. Users cannot override them.
const (
	LabelClusterName     = "dask.org/cluster-name"
	LabelComponent       = "dask.org/component"
	LabelWorkerGroupName = "dask.org/workergroup-name"
	LabelIstioInject     = "sidecar.istio.io/inject"
	// LabelTemplateHash is the hash of the Pod spec a scheduler or worker
	// Pod was made from (TemplateHash); a Pod whose hash differs from its
	// parent's current one is outdated. It is set at creation only.
	LabelTemplateHash = "dask.org/template-hash"

	ComponentScheduler   = "scheduler"
	ComponentWorker      = "worker"
	ComponentWorkerGroup = "workergroup"
	ComponentJobRunner   = "job-runner"
)

// KopfFinalizer is the finalizer the Python operator puts on DaskClusters and
// DaskAutoscalers. Objects it created can only be deleted once it is removed.
const KopfFinalizer = "kopf.zalando.org/KopfFinalizerMarker"

// Annotations with these prefixes belong to the tools that manage the parent
// object and are never passed on to children.
var filteredAnnotationPrefixes = []string{"kopf.zalando.org", "kubectl.kubernetes.io"}

// Annotations the operator keeps for itself on what it creates; they are
// never passed on to the next level of children.
const (
	// AnnotationPropagatedLabels lists, comma-separated, the labels the
	// operator copied to an object from its parents (its own labels aside).
	// A key that leaves the parents is removed from the object, while labels
	// others added to it are kept.
	AnnotationPropagatedLabels = "kubernetes.dask.org/propagated-labels"
	// AnnotationPropagatedAnnotations does the same for annotations.
	AnnotationPropagatedAnnotations = "kubernetes.dask.org/propagated-annotations"
	// AnnotationAdoptedFrom marks a Pod adopted from another controller
	// (the Python operator's Deployments).
	AnnotationAdoptedFrom = "kubernetes.dask.org/adopted-from"
)

// operatorLabels are set on children whatever their parents say; they are
// never removed, so they are not listed in AnnotationPropagatedLabels.
var operatorLabels = map[string]bool{
	LabelClusterName: true, LabelComponent: true, LabelWorkerGroupName: true, LabelIstioInject: true,
	LabelTemplateHash: true,
}

// internalAnnotation reports whether an annotation is the operator's own
// bookkeeping on one object.
func internalAnnotation(key string) bool {
	switch key {
	case AnnotationSyncedReplicas, AnnotationAttempt, AnnotationPropagatedLabels, AnnotationPropagatedAnnotations:
		return true
	}
	return false
}

// PassedOnAnnotation reports whether an annotation key is copied to children.
func PassedOnAnnotation(key string) bool {
	if internalAnnotation(key) {
		return false
	}
	for _, p := range filteredAnnotationPrefixes {
		if strings.HasPrefix(key, p) {
			return false
		}
	}
	return true
}

// MergeLabels merges label maps; later maps win. It never returns nil.
func MergeLabels(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// MergeAnnotations merges annotation maps, later maps win, and drops the keys
// that are not passed on to children. It returns nil when nothing is left.
func MergeAnnotations(maps ...map[string]string) map[string]string {
	var out map[string]string
	for _, m := range maps {
		for k, v := range m {
			if !PassedOnAnnotation(k) {
				continue
			}
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// SchedulerSelector selects a cluster's scheduler Pod.
func SchedulerSelector(cluster string) labels.Set {
	return labels.Set{LabelClusterName: cluster, LabelComponent: ComponentScheduler}
}

// WorkerGroupSelector selects the worker Pods of one group.
func WorkerGroupSelector(cluster, group string) labels.Set {
	return labels.Set{LabelClusterName: cluster, LabelComponent: ComponentWorker, LabelWorkerGroupName: group}
}

// ManagedSelector selects every Pod and Service the operator creates; it
// limits the operator's Pod and Service caches to Dask objects.
const ManagedSelector = LabelClusterName

// Kueue's labels on a DaskJob or DaskCluster (see pkg/kueue): the queue it
// waits in and its priority class.
const (
	LabelKueueQueueName     = "kueue.x-k8s.io/queue-name"
	LabelKueuePriorityClass = "kueue.x-k8s.io/priority-class"
)
