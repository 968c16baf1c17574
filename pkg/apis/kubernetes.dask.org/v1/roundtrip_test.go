package v1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned/fake"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func newObject(kind string) (runtime.Object, error) {
	switch kind {
	case "DaskCluster":
		return &daskv1.DaskCluster{}, nil
	case "DaskWorkerGroup":
		return &daskv1.DaskWorkerGroup{}, nil
	case "DaskJob":
		return &daskv1.DaskJob{}, nil
	case "DaskAutoscaler":
		return &daskv1.DaskAutoscaler{}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// Every resource the Python operator's users write decodes into the typed
// objects with no unknown field, and encodes back without losing anything.
func TestUpstreamExamplesRoundTrip(t *testing.T) {
	for _, ex := range testenv.UpstreamExamples(t) {
		t.Run(ex.File, func(t *testing.T) {
			obj, err := newObject(ex.Object.GetKind())
			require.NoError(t, err)
			require.NoError(t, yaml.UnmarshalStrict(ex.YAML, obj), "strict decode: a field the types do not know")

			encoded, err := json.Marshal(obj)
			require.NoError(t, err)
			var out map[string]any
			require.NoError(t, json.Unmarshal(encoded, &out))
			assertContains(t, "", ex.Object.Object, out)
		})
	}
}

// assertContains checks that every value in want is in got at the same path.
func assertContains(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !assert.Truef(t, ok, "%s: want an object, got %T", path, got) {
			return
		}
		for k, v := range w {
			gv, ok := g[k]
			if !assert.Truef(t, ok, "%s.%s lost in the round trip", path, k) {
				continue
			}
			assertContains(t, path+"."+k, v, gv)
		}
	case []any:
		g, ok := got.([]any)
		if !assert.Truef(t, ok, "%s: want a list, got %T", path, got) || !assert.Lenf(t, g, len(w), "%s", path) {
			return
		}
		for i := range w {
			assertContains(t, fmt.Sprintf("%s[%d]", path, i), w[i], g[i])
		}
	default:
		assert.Equalf(t, want, got, "%s", path)
	}
}

func TestDeepCopyAndFakeClientsetForAllKinds(t *testing.T) {
	ctx := context.Background()
	replicas := int32(3)
	cluster := &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", Labels: map[string]string{"a": "b"}},
		Spec:       daskv1.DaskClusterSpec{Worker: daskv1.WorkerSpec{Replicas: &replicas}},
	}
	group := &daskv1.DaskWorkerGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns"},
		Spec:       daskv1.DaskWorkerGroupSpec{Cluster: "c", Worker: daskv1.WorkerSpec{Replicas: &replicas}},
	}
	limit := int32(2)
	job := &daskv1.DaskJob{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns"},
		Spec:       daskv1.DaskJobSpec{BackoffLimit: &limit},
	}
	as := &daskv1.DaskAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"},
		Spec:       daskv1.DaskAutoscalerSpec{Cluster: "c", Minimum: 1, Maximum: 5},
	}

	// Deep copies share nothing with the original.
	cc := cluster.DeepCopy()
	*cc.Spec.Worker.Replicas = 7
	cc.Labels["a"] = "changed"
	assert.Equal(t, int32(3), *cluster.Spec.Worker.Replicas)
	assert.Equal(t, "b", cluster.Labels["a"])
	jc := job.DeepCopyObject().(*daskv1.DaskJob)
	*jc.Spec.BackoffLimit = 9
	assert.Equal(t, int32(2), *job.Spec.BackoffLimit)

	client := fake.NewSimpleClientset()
	v1 := client.KubernetesV1()
	_, err := v1.DaskClusters("ns").Create(ctx, cluster, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = v1.DaskWorkerGroups("ns").Create(ctx, group, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = v1.DaskJobs("ns").Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = v1.DaskAutoscalers("ns").Create(ctx, as, metav1.CreateOptions{})
	require.NoError(t, err)

	gotCluster, err := v1.DaskClusters("ns").Get(ctx, "c", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(3), *gotCluster.Spec.Worker.Replicas)
	groups, err := v1.DaskWorkerGroups("ns").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, groups.Items, 1)
	assert.Equal(t, "c", groups.Items[0].Spec.Cluster)
	gotJob, err := v1.DaskJobs("ns").Get(ctx, "j", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), *gotJob.Spec.BackoffLimit)
	gotAS, err := v1.DaskAutoscalers("ns").Get(ctx, "a", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(5), gotAS.Spec.Maximum)

	gotAS.Status.DesiredWorkers = &replicas
	_, err = v1.DaskAutoscalers("ns").UpdateStatus(ctx, gotAS, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, v1.DaskClusters("ns").Delete(ctx, "c", metav1.DeleteOptions{}))
	_, err = v1.DaskClusters("ns").Get(ctx, "c", metav1.GetOptions{})
	assert.Error(t, err)
}
