package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/kueue"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Kueue: a DaskCluster labelled kueue.x-k8s.io/queue-name (and not a
// DaskJob's) waits in that queue. Its Workload has a pod set for the
// scheduler and one for the default group's workers; nothing runs until
// Kueue admits it; then the scheduler runs on its flavor's nodes and the
// group controller keeps the workers within the admitted count. An
// eviction stops it as spec.suspend does, and the quota goes back once its
// Pods are gone.

// clusterAdmission is Kueue's decision and the scheduler's placement.
type clusterAdmission struct {
	controller.Admission
	scheduler kueue.Flavor
}

// admit reads what Kueue decided for a cluster, creating its Workload
// when it has none.
func (c *Controller) admit(ctx context.Context, cluster *daskv1.DaskCluster) (clusterAdmission, error) {
	adm, err := c.ClusterAdmission(cluster)
	if err != nil || !adm.Queued {
		return clusterAdmission{Admission: adm}, err
	}
	a := clusterAdmission{Admission: adm}
	if adm.Reason == daskv1.ReasonKueueNotInstalled {
		c.WarnOnce(cluster, cluster.Status.Conditions, daskv1.ConditionAdmitted, adm.Reason, adm.Message)
		return a, nil
	}
	if adm.Workload == nil {
		desired, err := c.desiredWorkload(ctx, cluster)
		if err != nil {
			return a, err
		}
		created, err := c.Caches.Kueue.Create(ctx, desired)
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return a, fmt.Errorf("create Workload %s: %w", desired.Name, err)
		}
		if err == nil {
			klog.InfoS("Created Workload", "daskcluster", klog.KObj(cluster), "workload", created.Name, "queue", desired.Spec.QueueName)
			c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonWorkloadCreated, "Created Workload %s in queue %s", created.Name, desired.Spec.QueueName)
			a.Message = fmt.Sprintf("Workload %s waits in queue %s", created.Name, desired.Spec.QueueName)
		}
		return a, nil
	}
	if !adm.Held {
		if as, ok := adm.Workload.Assignment(kueue.PodSetScheduler); ok {
			if a.scheduler, err = c.Caches.Kueue.Placement(as); err != nil {
				return a, fmt.Errorf("Workload %s: %w", adm.Workload.Name, err)
			}
		}
	}
	return a, nil
}

// desiredWorkload is a cluster's Workload: its scheduler and its default
// group's workers.
func (c *Controller) desiredWorkload(ctx context.Context, cluster *daskv1.DaskCluster) (*kueue.Workload, error) {
	sets := []kueue.PodSet{{Name: kueue.PodSetScheduler, Count: 1, Template: corev1.PodTemplateSpec{Spec: cluster.Spec.Scheduler.Spec}}}
	if n := resources.Replicas(&cluster.Spec.Worker); n > 0 {
		sets = append(sets, kueue.PodSet{Name: kueue.PodSetWorkers, Count: n, Template: corev1.PodTemplateSpec{Spec: cluster.Spec.Worker.Spec}})
	}
	w := &kueue.Workload{
		ObjectMeta: metav1.ObjectMeta{
			Name:      kueue.Name("DaskCluster", cluster.Name, string(cluster.UID)),
			Namespace: cluster.Namespace,
			Labels:    map[string]string{kueue.LabelOwnerKind: "DaskCluster"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cluster,
				daskv1.SchemeGroupVersion.WithKind("DaskCluster"))},
		},
		Spec: kueue.WorkloadSpec{PodSets: sets, QueueName: cluster.Labels[kueue.LabelQueueName]},
	}
	if err := c.SetWorkloadPriority(ctx, &w.Spec, cluster.Labels[kueue.LabelPriorityClass], cluster.Spec.Scheduler.Spec.PriorityClassName); err != nil {
		return nil, err
	}
	return w, nil
}

// releaseEvicted gives an evicted cluster's quota back once its Pods are
// gone.
func (c *Controller) releaseEvicted(ctx context.Context, cluster *daskv1.DaskCluster, adm controller.Admission) error {
	wl := adm.Workload
	if wl == nil || wl.Evicted() == nil || !wl.HasQuotaReservation() || len(c.Caches.ClusterPods(cluster.Namespace, cluster.Name)) > 0 {
		return nil
	}
	_, u, err := c.Caches.Kueue.WorkloadOf(cluster.Namespace, cluster.UID)
	if err != nil || u == nil {
		return err
	}
	if err := kueue.ClearAdmission(u, wl.Evicted()); err != nil {
		return err
	}
	if err := c.Caches.Kueue.UpdateStatus(ctx, u); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("give the quota of Workload %s back: %w", wl.Name, err)
	}
	klog.InfoS("Gave an evicted Workload's quota back", "daskcluster", klog.KObj(cluster), "workload", wl.Name)
	return nil
}
