package controller

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
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

// incumbent is what the Python operator left of one cluster.
type incumbent struct {
	deployments []*appsv1.Deployment // owned by the cluster or by one of its groups
	replicaSets []*appsv1.ReplicaSet // of those Deployments, or left by them
	controlled  []*corev1.Pod        // Pods those ReplicaSets still control
	orphans     []*corev1.Pod        // the cluster's running Pods that no controller owns
}

func (in incumbent) empty() bool {
	return len(in.deployments)+len(in.replicaSets)+len(in.controlled)+len(in.orphans) == 0
}

// pending tells whether anything of the takeover concerns the scheduler
// (group "") or one group's workers.
func (in incumbent) pending(group string) bool {
	concerns := func(labels map[string]string) bool {
		if group == "" {
			return labels[resources.LabelComponent] == resources.ComponentScheduler
		}
		return labels[resources.LabelComponent] == resources.ComponentWorker && labels[resources.LabelWorkerGroupName] == group
	}
	for _, d := range in.deployments {
		if concerns(d.Labels) {
			return true
		}
	}
	for _, rs := range in.replicaSets {
		if concerns(rs.Labels) {
			return true
		}
	}
	for _, p := range append(append([]*corev1.Pod{}, in.controlled...), in.orphans...) {
		if concerns(p.Labels) {
			return true
		}
	}
	return false
}

// podLive tells a Pod neither ended nor being deleted.
func podLive(p *corev1.Pod) bool { return p.DeletionTimestamp == nil && !podTerminal(p) }

// incumbentComponent tells a scheduler's or worker's labels.
func incumbentComponent(labels map[string]string) bool {
	c := labels[resources.LabelComponent]
	return c == resources.ComponentScheduler || c == resources.ComponentWorker
}

// takeOver carries the takeover of a cluster one step further and reports
// whether its scheduler must still wait for it.
// It returns the scheduler Pod being taken over, for the cluster's status.
func (c *Controller) takeOver(ctx context.Context, cluster *daskv1.DaskCluster, status *daskv1.DaskClusterStatus) (bool, *corev1.Pod, error) {
	in := c.incumbents.of(ctx, cluster)
	if in.empty() {
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
		c.recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonTakingOver,
			"Taking over from the Python operator: removed its %s %s without deleting its Pods, which this operator adopts", kind, name)
	}
	for _, d := range in.deployments {
		if d.DeletionTimestamp == nil {
			removeOrphaning("Deployment", d.Name, d.UID, c.kube.AppsV1().Deployments(ns).Delete)
		}
	}
	for _, rs := range in.replicaSets {
		// A ReplicaSet still controlled by a Deployment is left to the
		// garbage collector, which orphans it first: deleting it earlier
		// would make a live Deployment create another.
		if rs.DeletionTimestamp == nil && metav1.GetControllerOf(rs) == nil {
			removeOrphaning("ReplicaSet", rs.Name, rs.UID, c.kube.AppsV1().ReplicaSets(ns).Delete)
		}
	}
	for _, p := range in.orphans {
		if err := c.adoptPod(ctx, cluster, p); err != nil {
			errs = append(errs, err)
		}
	}
	pending := in.pending("")
	msg := fmt.Sprintf("taking over from the Python operator: %d Deployments, %d ReplicaSets and %d Pods left to adopt; "+
		"no scheduler or worker is created or deleted until it is done",
		len(in.deployments), len(in.replicaSets), len(in.controlled)+len(in.orphans))
	setCondition(&status.Conditions, cluster.Generation, daskv1.ConditionTakingOver, metav1.ConditionTrue, daskv1.ReasonTakingOver, msg)
	return pending, in.scheduler(), errors.Join(errs...)
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
		g, err := c.caches.group(p.Namespace, p.Labels[resources.LabelWorkerGroupName])
		if err != nil || g.Spec.Cluster != cluster.Name || g.DeletionTimestamp != nil {
			return nil // no group of this cluster claims it (yet)
		}
		ref, owner = resources.ControllerRefToWorkerGroup(g), "DaskWorkerGroup "+g.Name
	default:
		return nil
	}
	// The Pod says where it came from.
	patch := adoptPatch(p, ref, map[string]string{resources.AnnotationAdoptedFrom: "python-operator"})
	adopted, err := c.kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone or changed: the next sync looks again
	}
	if err != nil {
		return fmt.Errorf("adopt Pod %s: %w", p.Name, err)
	}
	klog.InfoS("Adopted a Pod of the Python operator", "daskcluster", klog.KObj(cluster), "pod", klog.KObj(p), "owner", owner)
	c.recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonAdoptedPod,
		"Adopted %s Pod %s from the Python operator into %s; it keeps running", p.Labels[resources.LabelComponent], p.Name, owner)
	if p.Labels[resources.LabelComponent] == resources.ComponentScheduler && !schedulerServesAPI(adopted) {
		c.recorder.Eventf(cluster, corev1.EventTypeWarning, daskv1.ReasonAdoptedSchedulerWithoutAPI,
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
	for _, p := range c.caches.podsControlledBy(cluster.Namespace, string(cluster.UID)) {
		if p.Labels[resources.LabelComponent] == resources.ComponentScheduler && p.Annotations[resources.AnnotationAdoptedFrom] != "" &&
			p.DeletionTimestamp == nil {
			return p
		}
	}
	return nil
}

// schedulerTakenOver returns the scheduler Pod of a takeover in progress
// (still controlled by a ReplicaSet, or orphaned), for the cluster's status.
func (in incumbent) scheduler() *corev1.Pod {
	for _, p := range append(append([]*corev1.Pod{}, in.controlled...), in.orphans...) {
		if p.Labels[resources.LabelComponent] == resources.ComponentScheduler && p.DeletionTimestamp == nil {
			return p
		}
	}
	return nil
}
