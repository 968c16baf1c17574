package kueue

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func admittedWorkload() *Workload {
	three := int32(3)
	return &Workload{
		ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: "ns", Generation: 2},
		Spec: WorkloadSpec{QueueName: "q", PodSets: []PodSet{
			{Name: PodSetScheduler, Count: 1}, {Name: PodSetWorkers, Count: 5}}},
		Status: WorkloadStatus{
			Conditions: []metav1.Condition{
				{Type: ConditionQuotaReserved, Status: metav1.ConditionTrue, Reason: "QuotaReserved"},
				{Type: ConditionAdmitted, Status: metav1.ConditionTrue, Reason: "Admitted"},
				{Type: ConditionEvicted, Status: metav1.ConditionTrue, Reason: ReasonPreempted, Message: "preempted by a higher priority"},
			},
			Admission: &Admission{ClusterQueue: "cq", PodSetAssignments: []PodSetAssignment{
				{Name: PodSetScheduler, Flavors: map[corev1.ResourceName]string{"cpu": "spot"}},
				{Name: PodSetWorkers, Count: &three},
			}},
		},
	}
}

// Issue 31: what the operator reads of a Workload.
func TestWorkloadReading(t *testing.T) {
	w := admittedWorkload()
	assert.True(t, w.IsAdmitted())
	assert.True(t, w.HasQuotaReservation())
	require.NotNil(t, w.Evicted())
	n, ok := w.AdmittedCount(PodSetWorkers)
	assert.True(t, ok)
	assert.Equal(t, int32(3), n, "the assignment's count wins over the pod set's")
	n, _ = w.AdmittedCount(PodSetScheduler)
	assert.Equal(t, int32(1), n, "no count in the assignment: the pod set's")
	_, ok = w.AdmittedCount("other")
	assert.False(t, ok)
	w.Status.Admission = nil
	assert.False(t, w.IsAdmitted(), "Admitted without an admission is not admitted")
}

// Issue 31: an evicted Workload's quota is given back as Kueue's own
// integrations do, keeping the status fields not read here.
func TestClearAdmissionKeepsWhatItDoesNotKnow(t *testing.T) {
	u, err := ToUnstructured(admittedWorkload())
	require.NoError(t, err)
	w := admittedWorkload()
	// ToUnstructured leaves the status out (it is for creation): put it
	// back, with a field not read here.
	u.Object["status"] = map[string]any{"requeueState": map[string]any{"count": int64(2)}}
	for _, c := range w.Status.Conditions {
		require.NoError(t, SetCondition(u, c))
	}
	require.NoError(t, unstructured.SetNestedField(u.Object, map[string]any{"clusterQueue": "cq"}, "status", "admission"))

	require.NoError(t, ClearAdmission(u, w.Evicted()))
	got, err := FromUnstructured(u)
	require.NoError(t, err)
	assert.Nil(t, got.Status.Admission)
	assert.False(t, got.IsAdmitted())
	assert.Equal(t, metav1.ConditionFalse, apimeta.FindStatusCondition(got.Status.Conditions, ConditionQuotaReserved).Status)
	req := apimeta.FindStatusCondition(got.Status.Conditions, ConditionRequeued)
	require.NotNil(t, req)
	assert.Equal(t, metav1.ConditionTrue, req.Status, "a preempted workload queues again")
	assert.Equal(t, int64(2), req.ObservedGeneration)
	count, _, _ := unstructured.NestedInt64(u.Object, "status", "requeueState", "count")
	assert.Equal(t, int64(2), count, "fields not read here are written back unchanged")
}

// Issue 31: a Workload's name is per object (UID), within the API's limits.
func TestWorkloadName(t *testing.T) {
	a, b := Name("DaskJob", "j", "uid-1"), Name("DaskJob", "j", "uid-2")
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^daskjob-j-[0-9a-f]{5}$`, a)
	long := Name("DaskCluster", strings.Repeat("x", 300), "u")
	assert.LessOrEqual(t, len(long), 253)
}

// Issue 31: a flavor's node labels and tolerations join a Pod's own.
func TestFlavorApply(t *testing.T) {
	spec := &corev1.PodSpec{NodeSelector: map[string]string{"zone": "a"}, Tolerations: []corev1.Toleration{{Key: "own"}}}
	Flavor{NodeLabels: map[string]string{"pool": "spot"}, Tolerations: []corev1.Toleration{{Key: "spot"}}}.Apply(spec)
	assert.Equal(t, map[string]string{"zone": "a", "pool": "spot"}, spec.NodeSelector)
	assert.Len(t, spec.Tolerations, 2)
	empty := &corev1.PodSpec{}
	Flavor{}.Apply(empty)
	assert.Nil(t, empty.NodeSelector, "no flavor, no change")
}
