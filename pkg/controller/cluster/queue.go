package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
		if err := c.resizeElastic(ctx, cluster, adm); err != nil {
			return a, err
		}
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
	w := controller.NewWorkload(cluster, "DaskCluster", sets)
	if elastic(cluster) {
		w.Annotations = map[string]string{kueue.AnnotationElastic: "true"}
	}
	if err := c.SetWorkloadPriority(ctx, &w.Spec, cluster.Labels[kueue.LabelPriorityClass], cluster.Spec.Scheduler.Spec.PriorityClassName); err != nil {
		return nil, err
	}
	return w, nil
}

// releaseEvicted gives an evicted cluster's quota back once its Pods are
// gone.
func (c *Controller) releaseEvicted(ctx context.Context, cluster *daskv1.DaskCluster) error {
	if len(c.Caches.ClusterPods(cluster.Namespace, cluster.Name)) > 0 {
		return nil // their deletions bring the cluster back
	}
	return c.GiveQuotaBack(ctx, cluster, "DaskCluster")
}

// elastic tells a cluster that asks for elastic workload slices.
func elastic(cluster *daskv1.DaskCluster) bool {
	return cluster.Annotations[kueue.AnnotationElastic] == "true"
}

// resizeElastic follows the default group's replicas with the Workload of
// an admitted elastic cluster, as Kueue's own integrations do: a
// scale-down lowers the admitted slice's count (its quota goes back); a
// scale-up is a new slice, replacing the admitted one, that Kueue admits
// (or not) as a whole, and whose count follows the group while it waits.
// Until it is admitted, the group stays at the admitted slice's count.
func (c *Controller) resizeElastic(ctx context.Context, cluster *daskv1.DaskCluster, adm controller.Admission) error {
	if !elastic(cluster) || adm.Workload == nil {
		return nil
	}
	want := resources.Replicas(&cluster.Spec.Worker)
	if g, err := c.Caches.Group(cluster.Namespace, resources.DefaultWorkerGroupName(cluster.Name)); err == nil {
		want = resources.Replicas(&g.Spec.Worker)
	}
	admitted := adm.Workload
	var current, pending int = -1, -1
	for i, w := range adm.Slices {
		if w.Name == admitted.Name {
			current = i
		} else if i > current && !w.IsAdmitted() {
			pending = i
		}
	}
	if current < 0 {
		return nil
	}
	// Kueue finishes the slice a newly admitted one replaces; should that
	// not have happened, it is done here.
	for i := 0; i < current; i++ {
		if adm.Slices[i].IsAdmitted() && adm.Slices[current].ReplacementFor() == adm.Slices[i].Namespace+"/"+adm.Slices[i].Name {
			if err := c.finishSlice(ctx, adm.SlicesRaw[i], "replaced by Workload slice "+admitted.Name); err != nil {
				return err
			}
		}
	}
	have := admitted.Count(kueue.PodSetWorkers)
	switch {
	case pending >= 0:
		// A scale-up waits: it follows the group; back within the
		// admitted count, it is not needed.
		slice := adm.Slices[pending]
		if want <= have {
			return c.finishSlice(ctx, adm.SlicesRaw[pending], "the scale-up it was for was undone")
		}
		if slice.Count(kueue.PodSetWorkers) != want {
			return c.Caches.Kueue.SetCount(ctx, adm.SlicesRaw[pending], kueue.PodSetWorkers, want)
		}
	case want < have:
		klog.InfoS("Scaling an elastic Workload down", "daskcluster", klog.KObj(cluster), "workload", admitted.Name, "workers", want)
		return c.Caches.Kueue.SetCount(ctx, adm.SlicesRaw[current], kueue.PodSetWorkers, want)
	case want > have:
		slice, err := c.desiredWorkload(ctx, cluster)
		if err != nil {
			return err
		}
		for i := range slice.Spec.PodSets {
			if slice.Spec.PodSets[i].Name == kueue.PodSetWorkers {
				slice.Spec.PodSets[i].Count = want
			}
		}
		if len(slice.Spec.PodSets) == 1 {
			slice.Spec.PodSets = append(slice.Spec.PodSets, kueue.PodSet{Name: kueue.PodSetWorkers, Count: want,
				Template: corev1.PodTemplateSpec{Spec: cluster.Spec.Worker.Spec}})
		}
		slice.Name = kueue.Name("DaskCluster", cluster.Name, string(cluster.UID)+"/"+admitted.Name)
		slice.Annotations[kueue.AnnotationReplacementFor] = admitted.Namespace + "/" + admitted.Name
		created, err := c.Caches.Kueue.Create(ctx, slice)
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("create Workload slice %s: %w", slice.Name, err)
		}
		klog.InfoS("Created a Workload slice for a scale-up", "daskcluster", klog.KObj(cluster), "workload", created.Name, "replaces", admitted.Name, "workers", want)
		c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonWorkloadCreated,
			"Created Workload slice %s for %d workers, replacing %s once Kueue admits it", created.Name, want, admitted.Name)
	}
	return nil
}

// finishSlice marks a Workload slice that is no longer needed Finished.
func (c *Controller) finishSlice(ctx context.Context, u *unstructured.Unstructured, why string) error {
	if err := kueue.SetCondition(u, metav1.Condition{Type: kueue.ConditionFinished, Status: metav1.ConditionTrue, Reason: "OutOfSync", Message: why}); err != nil {
		return err
	}
	return c.Caches.Kueue.UpdateStatus(ctx, u)
}
