package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/dask-operator/dask-operator/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Taking over the clusters the Python (kopf) operator made. It runs every
// scheduler and worker as a Deployment of one replica; this operator runs
// bare Pods. Replacing those Pods would lose what the scheduler and workers
// hold, and creating ours beside them would put two schedulers behind one
// Service and twice the workers in the group. So the Pods are kept and
// adopted, the way a ReplicaSet adopts orphans:
//
//  1. each Deployment of the cluster or of one of its groups is deleted with
//     propagationPolicy Orphan (the garbage collector removes its
//     ReplicaSet's owner reference and leaves the ReplicaSet running);
//  2. each such ReplicaSet, once no Deployment controls it, is deleted with
//     propagationPolicy Orphan (its Pod loses its owner reference and keeps
//     running);
//  3. each Pod of the cluster left with no controller is adopted: the
//     scheduler by the DaskCluster, a worker by its DaskWorkerGroup.
//
// Until the last step is done for a cluster, its scheduler Pod is not
// created and its groups neither create nor delete workers: at every instant
// the cluster has the one scheduler and the workers it had.

// takeOver carries the takeover of a cluster one step further and reports
// whether its scheduler must still wait for it.
// It returns the scheduler Pod being taken over, for the cluster's status.
func (c *Controller) takeOver(ctx context.Context, cluster *daskv1.DaskCluster, status *daskv1.DaskClusterStatus) (bool, *corev1.Pod, error) {
	in := c.Incumbents.Of(ctx, cluster)
	if in.Empty() {
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionTakingOver)
		return false, nil, nil
	}
	ns := cluster.Namespace
	orphan := metav1.DeletePropagationOrphan
	var errs []error
	removeOrphaning := func(kind, name string, uid types.UID, del func(context.Context, string, metav1.DeleteOptions) error) {
		err := del(ctx, name, metav1.DeleteOptions{PropagationPolicy: &orphan, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove the Python operator's %s %s (orphaning its Pods): %w", kind, name, err))
			return
		}
		klog.InfoS("Removed the Python operator's object, keeping its Pods", "daskcluster", klog.KObj(cluster), "kind", kind, "name", name)
		c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonTakingOver,
			"Taking over from the Python operator: removed its %s %s without deleting its Pods, which this operator adopts", kind, name)
	}
	for _, d := range in.Deployments {
		if d.DeletionTimestamp == nil {
			removeOrphaning("Deployment", d.Name, d.UID, c.Kube.AppsV1().Deployments(ns).Delete)
		}
	}
	for _, rs := range in.ReplicaSets {
		// A ReplicaSet still controlled by a Deployment is left to the
		// garbage collector, which orphans it first: deleting it earlier
		// would make a live Deployment create another.
		if rs.DeletionTimestamp == nil && metav1.GetControllerOf(rs) == nil {
			removeOrphaning("ReplicaSet", rs.Name, rs.UID, c.Kube.AppsV1().ReplicaSets(ns).Delete)
		}
	}
	for _, p := range in.Orphans {
		if err := c.adoptPod(ctx, cluster, p); err != nil {
			errs = append(errs, err)
		}
	}
	pending := in.Pending("")
	msg := fmt.Sprintf("taking over from the Python operator: %d Deployments, %d ReplicaSets and %d Pods left to adopt; "+
		"no scheduler or worker is created or deleted until it is done",
		len(in.Deployments), len(in.ReplicaSets), len(in.Controlled)+len(in.Orphans))
	controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionTakingOver, metav1.ConditionTrue, daskv1.ReasonTakingOver, msg)
	return pending, in.Scheduler(), errors.Join(errs...)
}

// adoptPod makes the cluster (for its scheduler) or the worker's group the
// controller of a Pod the Python operator's ReplicaSet left.
func (c *Controller) adoptPod(ctx context.Context, cluster *daskv1.DaskCluster, p *corev1.Pod) error {
	var ref metav1.OwnerReference
	var owner string
	switch p.Labels[resources.LabelComponent] {
	case resources.ComponentScheduler:
		ref, owner = resources.ControllerRefToCluster(cluster), "DaskCluster "+cluster.Name
	case resources.ComponentWorker:
		g, err := c.Caches.Group(p.Namespace, p.Labels[resources.LabelWorkerGroupName])
		if err != nil || g.Spec.Cluster != cluster.Name || g.DeletionTimestamp != nil {
			return nil // no group of this cluster claims it (yet)
		}
		ref, owner = resources.ControllerRefToWorkerGroup(g), "DaskWorkerGroup "+g.Name
	default:
		return nil
	}
	// The Pod says where it came from.
	patch := controller.AdoptPatch(p, ref, map[string]string{resources.AnnotationAdoptedFrom: "python-operator"})
	adopted, err := c.Kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone or changed: the next sync looks again
	}
	if err != nil {
		return fmt.Errorf("adopt Pod %s: %w", p.Name, err)
	}
	klog.InfoS("Adopted a Pod of the Python operator", "daskcluster", klog.KObj(cluster), "pod", klog.KObj(p), "owner", owner)
	c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonAdoptedPod,
		"Adopted %s Pod %s from the Python operator into %s; it keeps running", p.Labels[resources.LabelComponent], p.Name, owner)
	if p.Labels[resources.LabelComponent] == resources.ComponentScheduler && !schedulerServesAPI(adopted) {
		c.Recorder.Eventf(cluster, corev1.EventTypeWarning, daskv1.ReasonAdoptedSchedulerWithoutAPI,
			"The scheduler Pod %s adopted from the Python operator does not enable %s in %s: its workers cannot be retired "+
				"gracefully (scale-down falls back to deleting them after --retire-fallback-timeout) and autoscalers get no target. "+
				"Delete the Pod when its work can be lost: its replacement serves the API",
			p.Name, resources.SchedulerAPIRoute, resources.EnvSchedulerHTTPRoutes)
	}
	return nil
}

// schedulerServesAPI tells whether a scheduler Pod enables the HTTP API
// route: with no routes of its own, Dask's defaults leave it out.
func schedulerServesAPI(p *corev1.Pod) bool {
	if len(p.Spec.Containers) == 0 {
		return false
	}
	_, api := resources.SchedulerRoutes(p.Spec.Containers[0].Env)
	return api
}

// adoptedScheduler returns the scheduler Pod a cluster adopted (its name is
// not the one this operator gives), or nil. One that ended is returned too,
// so that it is deleted before its replacement starts.
func (c *Controller) adoptedScheduler(cluster *daskv1.DaskCluster) *corev1.Pod {
	for _, p := range c.Caches.PodsControlledBy(cluster.Namespace, string(cluster.UID)) {
		if p.Labels[resources.LabelComponent] == resources.ComponentScheduler && p.Annotations[resources.AnnotationAdoptedFrom] != "" &&
			p.DeletionTimestamp == nil {
			return p
		}
	}
	return nil
}
