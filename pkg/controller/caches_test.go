package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTrimPodKeepsWhatTheControllersRead(t *testing.T) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "w", Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"kubernetes.dask.org/attempt": "2"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}},
		},
		Spec: corev1.PodSpec{NodeName: "n", RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "c", Image: "big", Env: []corev1.EnvVar{{Name: "X", Value: "Y"}}}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.1", Message: "m", Reason: "r",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", RestartCount: 2, Image: "big",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}}},
		},
	}
	obj, err := trimPod(p)
	require.NoError(t, err)
	got := obj.(*corev1.Pod)
	assert.Empty(t, got.Spec.Containers, "container specs are dropped")
	assert.Empty(t, got.ManagedFields)
	assert.Equal(t, "n", got.Spec.NodeName)
	assert.Equal(t, corev1.RestartPolicyNever, got.Spec.RestartPolicy)
	assert.Equal(t, p.Labels, got.Labels)
	assert.Equal(t, "2", got.Annotations["kubernetes.dask.org/attempt"])
	assert.True(t, podReady(got))
	assert.Equal(t, int32(2), restarts(got))
	assert.Equal(t, "10.0.0.1", got.Status.PodIP)
	assert.Contains(t, podFailureMessage(got), "exited with code 3")
	tomb, _ := trimPod("not a pod")
	assert.Equal(t, "not a pod", tomb)
}
