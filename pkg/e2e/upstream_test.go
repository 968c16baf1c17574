package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// The Python operator's own examples, unchanged, run real Dask: every
// DaskCluster's workers register with its scheduler, worker groups add
// workers to their cluster, the autoscaler sizes the default group from the
// idle scheduler, and every DaskJob ends as its runner says: Successful, or
// Failed for failedjob.yaml. (Its scheduler Service selects cluster
// "simple-job", not its own, so its runner never reaches a scheduler and
// fails after Dask's 30 s connect timeout, before its `assert False`: the
// same as on a real cluster, where that Service has no endpoints.)
func TestUpstreamExamplesRunDask(t *testing.T) {
	examples := testenv.UpstreamExamples(t)
	byKind := map[string][]testenv.Example{}
	for _, e := range examples {
		byKind[e.Object.GetKind()] = append(byKind[e.Object.GetKind()], e)
	}
	require.NotEmpty(t, byKind["DaskCluster"])
	require.NotEmpty(t, byKind["DaskJob"])

	for _, ex := range byKind["DaskCluster"] {
		t.Run(ex.File, func(t *testing.T) {
			ns := newNamespace(t)
			cluster := create(t, ns, ex)
			name := cluster.GetName()
			replicas, _, _ := unstructured.NestedInt64(cluster.Object, "spec", "worker", "replicas")
			ip := schedulerIP(t, ns, name)
			waitRegistered(t, ns, name, name+"-default", ip, int(replicas), 2*time.Minute)

			// The examples' worker groups and autoscaler name the cluster
			// "simple"; they join it here.
			if name != "simple" {
				return
			}
			extra := 0
			for _, g := range byKind["DaskWorkerGroup"] {
				create(t, ns, g)
				n, _, _ := unstructured.NestedInt64(g.Object.Object, "spec", "worker", "replicas")
				extra += int(n)
			}
			for _, a := range byKind["DaskAutoscaler"] {
				create(t, ns, a)
			}
			want := int(replicas) + extra
			if len(byKind["DaskAutoscaler"]) > 0 {
				want = 1 + extra // an idle scheduler wants no worker: the minimum, 1
			}
			eventually(t, 3*time.Minute, func() (bool, string) {
				registered, err := registeredWorkers(ip)
				if err != nil {
					return false, err.Error()
				}
				return len(registered) == want, fmt.Sprintf("registered workers %v, want %d", registered, want)
			})
		})
	}

	for _, ex := range byKind["DaskJob"] {
		t.Run(ex.File, func(t *testing.T) {
			ns := newNamespace(t)
			job := create(t, ns, ex)
			want := daskv1.JobSuccessful
			if strings.Contains(ex.File, "failed") {
				want = daskv1.JobFailed
			}
			got := waitJob(t, ns, job.GetName(), want)
			require.Equal(t, resources.JobClusterName(job.GetName()), got.Status.ClusterName)
		})
	}
}

func create(t *testing.T, ns string, ex testenv.Example) *unstructured.Unstructured {
	t.Helper()
	obj := ex.Object.DeepCopy()
	obj.SetNamespace(ns)
	gvr := daskv1.SchemeGroupVersion.WithResource(strings.ToLower(obj.GetKind()) + "s")
	created, err := dynamic.NewForConfigOrDie(env.Config).Resource(gvr).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{})
	require.NoError(t, err, ex.File)
	return created
}
