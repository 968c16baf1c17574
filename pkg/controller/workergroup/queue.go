package workergroup

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/kueue"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// withinAdmission keeps the group of an admitted queued cluster within
// what Kueue admitted: it returns the group with its replicas capped at the
// admitted count (more asked for, by kubectl, the autoscaler or the
// Python client, wait: a grown Workload needs a new admission), and the
// placement of the flavors assigned to its workers. Only the default
// group is in the cluster's Workload; another group of a queued cluster
// runs no worker.
func (c *Controller) withinAdmission(group *daskv1.DaskWorkerGroup, cluster *daskv1.DaskCluster, adm controller.Admission,
	status *daskv1.DaskWorkerGroupStatus) (*daskv1.DaskWorkerGroup, kueue.Flavor, error) {
	wl := adm.Workload
	var admitted int32
	var placement kueue.Flavor
	podSet, inWorkload := controller.PodSetOf(group.Name, resources.DefaultWorkerGroupName(cluster.Name))
	if inWorkload {
		admitted, _ = wl.AdmittedCount(podSet)
		if as, ok := wl.Assignment(podSet); ok {
			var err error
			if placement, err = c.Caches.Kueue.Placement(as); err != nil {
				return group, placement, fmt.Errorf("Workload %s: %w", wl.Name, err)
			}
		}
	}
	want := resources.Replicas(&group.Spec.Worker)
	if want <= admitted {
		controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionAdmitted, metav1.ConditionTrue, daskv1.ReasonAdmitted,
			fmt.Sprintf("%d workers admitted by Kueue (Workload %s)", admitted, wl.Name))
		return group, placement, nil
	}
	msg := fmt.Sprintf("%d workers asked for, %d admitted by Kueue (Workload %s): only those run; more need the cluster queued again with more workers", want, admitted, wl.Name)
	if cluster.Annotations[kueue.AnnotationElastic] == "true" {
		msg = fmt.Sprintf("%d workers asked for, %d admitted by Kueue (Workload %s): the others wait for Kueue to admit the scale-up's Workload slice", want, admitted, wl.Name)
	}
	if !inWorkload {
		msg = fmt.Sprintf("DaskCluster %q waits in a Kueue queue and its Workload has only the default group's workers: this group runs none", cluster.Name)
	}
	controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionAdmitted, metav1.ConditionFalse, daskv1.ReasonExceedsAdmission, msg)
	capped := group.DeepCopy()
	capped.Spec.Worker.Replicas = &admitted
	return capped, placement, nil
}
