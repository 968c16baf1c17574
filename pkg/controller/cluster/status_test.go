package cluster

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Issue 30: a cluster's status is computed from what the sync observed,
// by a function that reads nothing else and acts on nothing.
func TestCalculateStatusFromWhatWasObserved(t *testing.T) {
	c := testobjects.Cluster("c")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "c-scheduler", Namespace: "ns"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "c-scheduler", Namespace: "ns"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	def := testobjects.Group(resources.DefaultWorkerGroupName("c"), "c", 3)
	def.OwnerReferences = []metav1.OwnerReference{resources.ControllerRefToCluster(c)}
	def.Status.Replicas, def.Status.ReadyReplicas = 3, 2
	extra := testobjects.Group("c-big", "c", 2)
	extra.Status.Replicas, extra.Status.ReadyReplicas = 2, 2

	st := calculateStatus(c, c.Status.DeepCopy(), clusterObserved{svc: svc, pod: pod, groups: []*daskv1.DaskWorkerGroup{def, extra}, domain: "cluster.local"})
	assert.Equal(t, daskv1.DaskClusterRunning, st.Phase)
	assert.Equal(t, int32(5), st.Replicas)
	assert.Equal(t, int32(4), st.ReadyReplicas)
	assert.Equal(t, int32(3), st.DefaultGroupReplicas, "the scale subresource describes the default group")
	assert.True(t, apimeta.IsStatusConditionTrue(st.Conditions, daskv1.ConditionSchedulerReady))
	assert.False(t, apimeta.IsStatusConditionTrue(st.Conditions, daskv1.ConditionWorkersReady), "4 of 5 ready")
	assert.Equal(t, "tcp://c-scheduler.ns.svc.cluster.local:8786", st.SchedulerAddress)
	assert.Empty(t, c.Status.Conditions, "the cluster it was given is not changed")

	st = calculateStatus(c, c.Status.DeepCopy(), clusterObserved{svc: svc, suspended: true})
	assert.Equal(t, daskv1.DaskClusterSuspended, st.Phase)
	assert.Equal(t, "Suspended", apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionSchedulerReady).Reason)

	st = calculateStatus(c, c.Status.DeepCopy(), clusterObserved{})
	assert.Equal(t, daskv1.DaskClusterPending, st.Phase, "no Service yet")
	assert.Equal(t, "PodMissing", apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionSchedulerReady).Reason)

	st = calculateStatus(c, c.Status.DeepCopy(), clusterObserved{svc: svc, createErr: controller.Permanent(errors.New("invalid"))})
	assert.Equal(t, daskv1.DaskClusterError, st.Phase)
	assert.Equal(t, daskv1.ReasonFailedCreate, apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionResourcesCreated).Reason)
}
