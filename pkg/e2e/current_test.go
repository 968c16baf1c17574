package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// legacySpec is a cluster as the Python client's make_cluster_spec and
// years of users' YAML write it: dask-scheduler and dask-worker.
func legacySpec(image string, workers int32) daskv1.DaskClusterSpec {
	spec := clusterSpecOn(image, workers)
	spec.Scheduler.Spec.Containers[0].Args = []string{"dask-scheduler", "--host", "0.0.0.0"}
	spec.Worker.Spec.Containers[0].Args = []string{"dask-worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads", "1", "--dashboard-address", "8788"}
	return spec
}

// Issue 28: on Dask 2026, which has no dask-scheduler or dask-worker, a
// cluster that starts them runs and computes, and says once, per object,
// how its commands are run. With the annotation that keeps the commands as
// written, the same cluster's scheduler cannot start: the command is not in
// the image.
func TestLegacyCommandsRunOnCurrentDask(t *testing.T) {
	cur := env.Current(t)
	ns := newNamespace(t)
	ctx := context.Background()
	for name, annotations := range map[string]map[string]string{
		"legacy": nil,
		"kept":   {resources.AnnotationLegacyCommands: resources.LegacyCommandsKeep},
	} {
		_, err := dask.KubernetesV1().DaskClusters(ns).Create(ctx, &daskv1.DaskCluster{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
			Spec:       legacySpec(cur.Image(), 2),
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	ip := schedulerIP(t, ns, "legacy")
	waitRegistered(t, ns, "legacy", "legacy-default", ip, 2, 2*time.Minute)
	c := startClientOn(t, cur, `
from dask.distributed import Client
c = Client("tcp://`+ip+`:8786", timeout=30)
print("version", c.get_versions()["scheduler"]["packages"]["distributed"], flush=True)
print("result", c.submit(sum, range(1000)).result(), flush=True)
`)
	assert.Equal(t, " "+cur.Version, c.WaitLine(t, "version", time.Minute))
	assert.Equal(t, " 499500", c.WaitLine(t, "result", time.Minute))
	for _, obj := range []string{"legacy", "legacy-default"} {
		evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + obj + ",reason=" + daskv1.ReasonLegacyDaskCommand})
		require.NoError(t, err)
		require.Len(t, evs.Items, 1, "one event on %s", obj)
		assert.Equal(t, int32(1), evs.Items[0].Count, "told once: %s", evs.Items[0].Message)
		assert.Contains(t, evs.Items[0].Message, resources.AnnotationLegacyCommands)
	}

	// Kept as written: the scheduler's command is missing, it never gets Ready.
	eventually(t, time.Minute, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, resources.SchedulerName("kept"), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if isReady(p) {
			t.Fatalf("the scheduler started dask-scheduler on Dask %s", cur.Version)
		}
		restarts := int32(0)
		for _, s := range p.Status.ContainerStatuses {
			restarts = s.RestartCount
		}
		return restarts > 0, fmt.Sprintf("scheduler Pod %s, restarts %d", p.Status.Phase, restarts)
	})
	logs, err := kube.CoreV1().Pods(ns).GetLogs(resources.SchedulerName("kept"), &corev1.PodLogOptions{}).DoRaw(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(logs), `"dask-scheduler": executable file not found`)
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=kept,reason=" + daskv1.ReasonLegacyDaskCommand})
	require.NoError(t, err)
	assert.Empty(t, evs.Items)
}

// Issue 28: an image the node does not have is not run on another Dask:
// the Pod waits with ErrImagePull and says which images there are.
func TestUnknownImageWaitsInErrImagePull(t *testing.T) {
	ns := newNamespace(t)
	_, err := dask.KubernetesV1().DaskClusters(ns).Create(context.Background(), &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "future", Namespace: ns},
		Spec:       clusterSpecOn(testenv.DaskRepository+":2099.1.0", 1),
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, time.Minute, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), resources.SchedulerName("future"), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, s := range p.Status.ContainerStatuses {
			if w := s.State.Waiting; w != nil && w.Reason == "ErrImagePull" {
				return p.Status.Phase == corev1.PodPending && strings.Contains(w.Message, `"ghcr.io/dask/dask:2099.1.0"`) &&
					strings.Contains(w.Message, env.Latest().Image()), w.Message
			}
		}
		return false, fmt.Sprintf("scheduler Pod %s: %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
}

// Issue 28: idleTimeout on real schedulers, on each Dask that answers
// check_idle (2024.12 and later; 2022.12 has no such route): a cluster
// nobody uses is deleted once idle for longer than idleTimeout, while one
// whose client keeps computing past it is kept, then deleted once it is idle.
func TestIdleTimeoutDeletesIdleClustersAndKeepsBusyOnes(t *testing.T) {
	eachDask(t, func(t *testing.T, d testenv.DaskImage) {
		if d.Generation == "bookworm" {
			t.Skipf("Dask %s has no check_idle route", d.Version)
		}
		ns := newNamespace(t)
		ctx := context.Background()
		const timeout = 8
		for _, name := range []string{"idle", "busy"} {
			spec := clusterSpecOn(d.Image(), 1)
			spec.IdleTimeout = timeout
			_, err := dask.KubernetesV1().DaskClusters(ns).Create(ctx, &daskv1.DaskCluster{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec,
			}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
		ip := schedulerIP(t, ns, "busy")
		waitRegistered(t, ns, "busy", "busy-default", ip, 1, 2*time.Minute)
		load := startClientOn(t, d, `
import time
from dask.distributed import Client
c = Client("tcp://`+ip+`:8786", timeout=30)
print("busy", flush=True)
for i in range(1000):
    c.submit(time.sleep, 1, pure=False).result()
`)
		load.WaitLine(t, "busy", time.Minute)
		start := time.Now()
		eventually(t, 2*time.Minute, func() (bool, string) {
			_, err := dask.KubernetesV1().DaskClusters(ns).Get(ctx, "idle", metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint("the idle cluster is still there: ", err)
		})
		// The busy one has computed all along: it stays past its timeout.
		if wait := 3*timeout*time.Second - time.Since(start); wait > 0 {
			time.Sleep(wait)
		}
		_, err := dask.KubernetesV1().DaskClusters(ns).Get(ctx, "busy", metav1.GetOptions{})
		require.NoError(t, err, "a cluster whose scheduler is busy is kept")

		load.Stop()
		eventually(t, 2*time.Minute, func() (bool, string) {
			_, err := dask.KubernetesV1().DaskClusters(ns).Get(ctx, "busy", metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint("the cluster, idle now, is still there: ", err)
		})
	})
}
