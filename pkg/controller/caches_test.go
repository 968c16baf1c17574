package controller

import (
	"testing"
	"unsafe"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
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
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.ContainersReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", RestartCount: 2, Image: "big",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}}},
		},
	}
	obj, err := TrimPod(p)
	require.NoError(t, err)
	_, isPod := obj.(*corev1.Pod)
	assert.False(t, isPod, "the cache holds a compact type of its own")
	again, err := TrimPod(obj)
	require.NoError(t, err)
	assert.Same(t, obj, again, "trimming is idempotent")
	got, ok := PodFromCache(obj)
	require.True(t, ok)
	assert.Empty(t, got.Spec.Containers, "container specs are dropped")
	assert.Empty(t, got.ManagedFields)
	assert.Equal(t, "n", got.Spec.NodeName)
	assert.Equal(t, corev1.RestartPolicyNever, got.Spec.RestartPolicy)
	assert.Equal(t, p.Labels, got.Labels)
	assert.Equal(t, "2", got.Annotations["kubernetes.dask.org/attempt"])
	assert.True(t, PodReady(got))
	assert.Len(t, got.Status.Conditions, 1, "only the Ready condition is read")
	assert.Equal(t, int32(2), Restarts(got))
	assert.Equal(t, "10.0.0.1", got.Status.PodIP)
	assert.Contains(t, PodFailureMessage(got), "exited with code 3")
	assert.Equal(t, corev1.PodRunning, got.Status.Phase)
	assert.Equal(t, "m", got.Status.Message)
	assert.Equal(t, "r", got.Status.Reason)
	fromTombstone, ok := PodFromCache(cache.DeletedFinalStateUnknown{Key: "ns/w", Obj: obj})
	require.True(t, ok)
	assert.Equal(t, "w", fromTombstone.Name)
	tomb, _ := TrimPod("not a pod")
	assert.Equal(t, "not a pod", tomb)
}

// Label keys, the component and the owner's kind are held once, not once
// per cached Pod; names are not shared.
func TestTrimmedPodsShareTheirRepeatedStrings(t *testing.T) {
	decoded := func(name string) *corev1.Pod {
		// Each string a copy of its own, as decoding makes them.
		cp := func(s string) string { return string([]byte(s)) }
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: cp(name), Namespace: cp("ns"),
			Labels:          map[string]string{cp(resources.LabelComponent): cp(resources.ComponentWorker), cp(resources.LabelClusterName): cp("c1")},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: cp("kubernetes.dask.org/v1"), Kind: cp("DaskWorkerGroup"), Name: cp("g")}},
		}}
	}
	a1, _ := TrimPod(decoded("w1"))
	a2, _ := TrimPod(decoded("w2"))
	p1, _ := PodFromCache(a1)
	p2, _ := PodFromCache(a2)
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	assert.True(t, same(p1.Labels[resources.LabelComponent], p2.Labels[resources.LabelComponent]))
	assert.True(t, same(p1.OwnerReferences[0].Kind, p2.OwnerReferences[0].Kind))
	assert.True(t, same(p1.Namespace, p2.Namespace))
	for k1 := range p1.Labels {
		for k2 := range p2.Labels {
			if k1 == k2 {
				assert.True(t, same(k1, k2), "label key %s", k1)
			}
		}
	}
	assert.False(t, same(p1.Labels[resources.LabelClusterName], p2.Labels[resources.LabelClusterName]), "names are not interned")
	assert.Equal(t, "c1", p2.Labels[resources.LabelClusterName])
}

func TestInternerHoldsAtMostItsBound(t *testing.T) {
	in := newInterner(2)
	a, b := in.intern(string([]byte("a"))), in.intern(string([]byte("b")))
	assert.Equal(t, "c", in.intern("c"))
	assert.Len(t, in.known, 2)
	assert.Equal(t, unsafe.StringData(a), unsafe.StringData(in.intern(string([]byte("a")))))
	assert.Equal(t, unsafe.StringData(b), unsafe.StringData(in.intern(string([]byte("b")))))
}

// Dask objects are cached as compact deep copies: the same content, no
// managed fields, slices no longer than their contents, and the condition
// strings every object repeats held once.
func TestCompactDaskObjectKeepsTheContent(t *testing.T) {
	decoded := func() *daskv1.DaskCluster {
		c := testobjects.Cluster("c")
		c.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
		conds := make([]metav1.Condition, 0, 8) // as decoding grows them
		for _, ty := range []string{daskv1.ConditionSchedulerReady, daskv1.ConditionWorkersReady} {
			conds = append(conds, metav1.Condition{Type: string([]byte(ty)), Status: metav1.ConditionStatus([]byte("True")),
				Reason: string([]byte("AllReady")), Message: "1/1"})
		}
		c.Status.Conditions = conds
		return c
	}
	in := decoded()
	want := in.DeepCopy()
	want.ManagedFields = nil
	a, err := compactDaskObject(in)
	require.NoError(t, err)
	b, _ := compactDaskObject(decoded())
	ca, cb := a.(*daskv1.DaskCluster), b.(*daskv1.DaskCluster)
	assert.Equal(t, want, ca)
	assert.Equal(t, len(ca.Status.Conditions), cap(ca.Status.Conditions))
	for i := range ca.Status.Conditions {
		x, y := ca.Status.Conditions[i], cb.Status.Conditions[i]
		assert.Equal(t, unsafe.StringData(x.Type), unsafe.StringData(y.Type))
		assert.Equal(t, unsafe.StringData(x.Reason), unsafe.StringData(y.Reason))
		assert.Equal(t, unsafe.StringData(string(x.Status)), unsafe.StringData(string(y.Status)))
	}
	tomb, _ := compactDaskObject("not an object")
	assert.Equal(t, "not an object", tomb)
}
