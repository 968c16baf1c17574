package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// The autoscaler follows the real scheduler's adaptive_target: it grows the
// default group under load up to maximum, and shrinks it afterwards by steps
// of at most 25 %, never below minimum.
func TestAutoscalerFollowsTheScheduler(t *testing.T) {
	sched := startDaskScheduler(t)
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		setDashboardPort(t, u, []string{"spec", "scheduler"}, sched.HTTPPort)
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(1), "spec", "worker", "replicas"))
	})
	pods := waitWorkers(t, ns, "simple", "simple-default", 1, time.Minute)
	startDaskWorker(t, sched, pods[0].Name)
	applyFixture(t, ns, "autoscaler.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(1), "spec", "minimum"))
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(6), "spec", "maximum"))
	})

	// Record every replica count the group is given.
	var mu sync.Mutex
	history := []int32{1}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	w, err := dask.KubernetesV1().DaskWorkerGroups(ns).Watch(watchCtx, metav1.ListOptions{FieldSelector: "metadata.name=simple-default"})
	require.NoError(t, err)
	go func() {
		for ev := range w.ResultChan() {
			g, ok := ev.Object.(*daskv1.DaskWorkerGroup)
			if !ok {
				continue
			}
			mu.Lock()
			if r := *g.Spec.Worker.Replicas; r != history[len(history)-1] {
				history = append(history, r)
			}
			mu.Unlock()
		}
	}()
	current := func() int32 {
		mu.Lock()
		defer mu.Unlock()
		return history[len(history)-1]
	}

	// Load: many sleeping tasks from a real client.
	load := startProcess(t, "client.log", nil, "/usr/bin/python3", "-c", fmt.Sprintf(`
import time
from dask.distributed import Client
client = Client(%q)
futures = client.map(time.sleep, [0.5] * 2000, pure=False)
client.gather(futures)
`, sched.Address()))
	t.Cleanup(func() { killGroup(load); _ = load.Wait() })
	eventually(t, 90*time.Second, func() (bool, string) {
		return current() == 6, fmt.Sprintf("replicas %d, want the maximum 6", current())
	})
	killGroup(load) // the client goes, its tasks are forgotten

	eventually(t, 2*time.Minute, func() (bool, string) {
		return current() == 1, fmt.Sprintf("replicas %d, want the minimum 1", current())
	})
	mu.Lock()
	seen := append([]int32(nil), history...)
	mu.Unlock()
	t.Logf("replica counts: %v", seen)
	for i := 1; i < len(seen); i++ {
		prev, next := seen[i-1], seen[i]
		assert.GreaterOrEqual(t, next, int32(1), "never below minimum")
		assert.LessOrEqual(t, next, int32(6), "never above maximum")
		if next < prev {
			assert.LessOrEqual(t, prev-next, max(int32(1), prev/4), "a step from %d to %d removes more than 25%%", prev, next)
		}
	}

	var as *daskv1.DaskAutoscaler
	eventually(t, 10*time.Second, func() (bool, string) {
		var err error
		as, err = dask.KubernetesV1().DaskAutoscalers(ns).Get(context.Background(), "simple", metav1.GetOptions{})
		require.NoError(t, err)
		return as.Status.DesiredWorkers != nil && *as.Status.DesiredWorkers == 1, fmt.Sprintf("status %+v", as.Status.DesiredWorkers)
	})
	assert.NotNil(t, as.Status.LastScaleTime)
	assert.NotNil(t, as.Status.CooldownUntil)
	waitEvent(t, ns, "simple", corev1.EventTypeNormal, "Autoscaled")
	out := kubectl(t, "describe", "daskautoscaler", "-n", ns, "simple")
	assert.Contains(t, out, "ScalingActive")
	eventually(t, 10*time.Second, func() (bool, string) {
		cluster := getCluster(t, ns, "simple")
		return *cluster.Spec.Worker.Replicas == 1, "the cluster follows its autoscaled default group"
	})
}

// Bounds apply even when the scheduler cannot be reached.
func TestAutoscalerEnforcesBoundsWithoutAScheduler(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		setDashboardPort(t, u, []string{"spec", "scheduler"}, freePort(t))
	})
	waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	applyFixture(t, ns, "autoscaler.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(4), "spec", "minimum"))
	})
	waitWorkers(t, ns, "simple", "simple-default", 4, time.Minute)
	as, err := dask.KubernetesV1().DaskAutoscalers(ns).Get(context.Background(), "simple", metav1.GetOptions{})
	require.NoError(t, err)
	ref := metav1.GetControllerOf(as)
	require.NotNil(t, ref, "the cluster adopts its autoscaler")
	assert.Equal(t, "DaskCluster", ref.Kind)
}

// The Debian Dask (2022.12) has no /api/v1/check_idle: idleTimeout is then
// reported once as unsupported, not on every poll, and nothing is deleted.
func TestIdleTimeoutUnsupportedIsSaidOnce(t *testing.T) {
	sched := startDaskScheduler(t)
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		setDashboardPort(t, u, []string{"spec", "scheduler"}, sched.HTTPPort)
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(1), "spec", "idleTimeout"))
	})
	eventually(t, 30*time.Second, func() (bool, string) {
		c := getCluster(t, ns, "simple")
		cond := condition(c.Status.Conditions, "IdleShutdown")
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == "Unsupported", fmt.Sprintf("%+v", cond)
	})
	time.Sleep(4 * pollInterval)
	n := 0
	for _, e := range events(t, ns, "simple") {
		if e.Reason == "IdleCheckUnsupported" {
			n += int(e.Count)
		}
	}
	assert.Equal(t, 1, n, "said once")
	getCluster(t, ns, "simple") // still there
}

// A scheduler that reports itself idle for longer than idleTimeout has its
// cluster deleted. Debian's Dask lacks check_idle, so a small HTTP server
// answers it the way newer Dask schedulers do.
func TestIdleClusterIsDeleted(t *testing.T) {
	var mu sync.Mutex
	idleSince := "null"
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/check_idle" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, `{"idle_since": %s}`, idleSince)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		setDashboardPort(t, u, []string{"spec", "scheduler"}, l.Addr().(*net.TCPAddr).Port)
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(5), "spec", "idleTimeout"))
	})
	waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	time.Sleep(3 * pollInterval)
	getCluster(t, ns, "simple") // busy: kept

	mu.Lock()
	idleSince = strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	mu.Unlock()
	eventually(t, 30*time.Second, func() (bool, string) {
		_, err := dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), "simple", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	waitEvent(t, ns, "simple", corev1.EventTypeNormal, "IdleTimeout")
}
