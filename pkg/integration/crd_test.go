package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func dryRunCreate(t *testing.T, ns string, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	t.Helper()
	client := dynamic.NewForConfigOrDie(env.Config)
	obj = obj.DeepCopy()
	obj.SetNamespace(ns)
	gvr := daskv1.SchemeGroupVersion.WithResource(strings.ToLower(obj.GetKind()) + "s")
	return client.Resource(gvr).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

func podSpecPaths(kind string) [][]string {
	switch kind {
	case "DaskCluster":
		return [][]string{{"spec", "worker", "spec"}, {"spec", "scheduler", "spec"}}
	case "DaskWorkerGroup":
		return [][]string{{"spec", "worker", "spec"}}
	case "DaskJob":
		return [][]string{{"spec", "job", "spec"}, {"spec", "cluster", "spec", "worker", "spec"}, {"spec", "cluster", "spec", "scheduler", "spec"}}
	}
	return nil
}

func TestReplicasDefaultToOne(t *testing.T) {
	ns := newNamespace(t)
	ex := testenv.Fixture(t, "cluster.yaml").Object.DeepCopy()
	unstructured.RemoveNestedField(ex.Object, "spec", "worker", "replicas")
	out, err := dryRunCreate(t, ns, ex)
	require.NoError(t, err)
	replicas, _, _ := unstructured.NestedInt64(out.Object, "spec", "worker", "replicas")
	assert.Equal(t, int64(1), replicas)
}

// Invalid objects are rejected at admission with a message that names the field.
func TestValidationRejectsWithClearMessages(t *testing.T) {
	ns := newNamespace(t)
	cluster := testenv.Fixture(t, "cluster.yaml").Object
	group := testenv.Fixture(t, "workergroup.yaml").Object
	autoscaler := testenv.Fixture(t, "autoscaler.yaml").Object
	job := testenv.Fixture(t, "job.yaml").Object

	cases := []struct {
		name  string
		obj   *unstructured.Unstructured
		edit  func(*unstructured.Unstructured)
		wants []string
	}{
		{"cluster name of 54 characters", cluster, func(u *unstructured.Unstructured) {
			u.SetName(strings.Repeat("a", 54))
		}, []string{"metadata.name", "53"}},
		{"cluster name that is not a DNS label", cluster, func(u *unstructured.Unstructured) {
			u.SetName("my.cluster")
		}, []string{"metadata.name", "DNS label"}},
		{"negative replicas", cluster, func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, int64(-1), "spec", "worker", "replicas"))
		}, []string{"spec.worker.replicas"}},
		{"negative group replicas", group, func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, int64(-3), "spec", "worker", "replicas"))
		}, []string{"spec.worker.replicas"}},
		{"group without spec.cluster", group, func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "spec", "cluster")
		}, []string{"spec.cluster", "Required"}},
		{"autoscaler without spec.cluster", autoscaler, func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "spec", "cluster")
		}, []string{"spec.cluster", "Required"}},
		{"minimum greater than maximum", autoscaler, func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, int64(5), "spec", "minimum"))
			require.NoError(t, unstructured.SetNestedField(u.Object, int64(2), "spec", "maximum"))
		}, []string{"spec.minimum", "less than or equal to spec.maximum"}},
		{"issue 15 item 6: a job runner that always restarts", job, func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, "Always", "spec", "job", "spec", "restartPolicy"))
		}, []string{"spec.job.spec.restartPolicy", "OnFailure or Never"}},
		{"negative minimum", autoscaler, func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, int64(-1), "spec", "minimum"))
		}, []string{"spec.minimum"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj.DeepCopy()
			tc.edit(obj)
			_, err := dryRunCreate(t, ns, obj)
			require.Error(t, err)
			for _, want := range tc.wants {
				assert.Contains(t, err.Error(), want)
			}
		})
	}

	// A name of exactly 53 characters is fine.
	ok := cluster.DeepCopy()
	ok.SetName(strings.Repeat("a", 53))
	_, err := dryRunCreate(t, ns, ok)
	assert.NoError(t, err)
}

// Issue 15, item 11: a group's spec.cluster cannot be changed; its other
// fields can.
func TestWorkerGroupClusterIsImmutable(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "workergroup.yaml", nil)
	ctx := context.Background()
	_, err := dask.KubernetesV1().DaskWorkerGroups(ns).Patch(ctx, "simple-additional", types.MergePatchType,
		[]byte(`{"spec":{"cluster":"another"}}`), metav1.PatchOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.cluster is immutable")
	_, err = dask.KubernetesV1().DaskWorkerGroups(ns).Patch(ctx, "simple-additional", types.MergePatchType,
		[]byte(`{"spec":{"worker":{"replicas":3}}}`), metav1.PatchOptions{})
	assert.NoError(t, err)
}

// kubectl sees the short names and printer columns the Python operator's
// users know, and the status subresource ignores status in a spec update.
func TestKubectlNamesColumnsAndStatusSubresource(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		u.SetAnnotations(nil)
	})
	out := kubectl(t, "get", "dsk", "-n", ns)
	assert.Contains(t, out, "WORKERS")
	assert.Contains(t, out, "STATUS")
	assert.Contains(t, out, "simple")
	out = kubectl(t, "get", "daskworkers", "-n", ns)
	assert.Contains(t, out, "WORKERS")
	out = kubectl(t, "get", "djb", "-n", ns)
	assert.Contains(t, out, "No resources found")
	out = kubectl(t, "api-resources", "--api-group=kubernetes.dask.org")
	for _, want := range []string{"daskclusters", "daskcluster,dsk", "daskworkers", "djb", "daskautoscalers"} {
		assert.Contains(t, out, want)
	}

	c := getCluster(t, ns, "simple")
	c.Status.Phase = daskv1.DaskClusterError
	updated, err := dask.KubernetesV1().DaskClusters(ns).Update(context.Background(), c, metav1.UpdateOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, daskv1.DaskClusterError, updated.Status.Phase, "status is written only through the status subresource")
}
