package integration

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// setDashboardPort points the cluster's scheduler Service http-dashboard
// port, and so the operator (through its URL template), at a scheduler on
// loopback.
func setDashboardPort(t *testing.T, u *unstructured.Unstructured, path []string, port int) {
	ports, _, _ := unstructured.NestedSlice(u.Object, append(path, "service", "ports")...)
	for _, p := range ports {
		if p.(map[string]any)["name"] == "http-dashboard" {
			p.(map[string]any)["port"] = int64(port)
		}
	}
	require.NoError(t, unstructured.SetNestedSlice(u.Object, ports, append(path, "service", "ports")...))
}

// Scale-down retires running workers through the real Dask scheduler and
// deletes exactly the Pods of the workers it chose.
func TestScaleDownRetiresTheWorkersTheSchedulerChooses(t *testing.T) {
	sched := startDaskScheduler(t)
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		setDashboardPort(t, u, []string{"spec", "scheduler"}, sched.HTTPPort)
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(4), "spec", "worker", "replicas"))
	})
	pods := waitWorkers(t, ns, "simple", "simple-default", 4, time.Minute)
	workers := map[string]*daskWorker{}
	for _, p := range pods {
		workers[p.Name] = startDaskWorker(t, sched, p.Name)
	}
	eventually(t, time.Minute, func() (bool, string) {
		names := schedulerWorkers(t, sched)
		return len(names) == 4, fmt.Sprintf("scheduler knows workers %v", names)
	})

	kubectl(t, "scale", "-n", ns, "daskcluster", "simple", "--replicas=2")
	remaining := waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	var deleted, retired []string
	for name, w := range workers {
		if !contains(podNames(remaining), name) {
			deleted = append(deleted, name)
		}
		if w.exitedByItself() {
			retired = append(retired, name)
		}
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		retired = retired[:0]
		for name, w := range workers {
			if w.exitedByItself() {
				retired = append(retired, name)
			}
		}
		return len(retired) == 2, fmt.Sprintf("workers closed by the scheduler: %v", retired)
	})
	sort.Strings(deleted)
	sort.Strings(retired)
	assert.Equal(t, retired, deleted, "the deleted Pods are those of the workers the scheduler retired")
	kept := podNames(remaining)
	sort.Strings(kept)
	assert.Equal(t, kept, schedulerWorkers(t, sched), "the scheduler keeps the workers whose Pods remain")
	eventually(t, 5*time.Second, func() (bool, string) {
		return hasEvent(t, ns, "simple-default", corev1.EventTypeNormal, "ScaledDown"), "no ScaledDown event"
	})
}

// With the scheduler unreachable, no running worker is deleted before the
// fallback timeout; a condition and a Warning event say why. After it,
// the newest workers go.
func TestScaleDownWaitsForAnUnreachableScheduler(t *testing.T) {
	ns := newNamespace(t)
	deadPort := freePort(t) // nothing listens there
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		setDashboardPort(t, u, []string{"spec", "scheduler"}, deadPort)
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(3), "spec", "worker", "replicas"))
	})
	before := waitWorkers(t, ns, "simple", "simple-default", 3, time.Minute)

	start := time.Now()
	kubectl(t, "scale", "-n", ns, "daskworkergroup", "simple-default", "--replicas=1")
	eventually(t, retireFallback-2*time.Second, func() (bool, string) {
		g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(context.Background(), "simple-default", metav1.GetOptions{})
		require.NoError(t, err)
		c := condition(g.Status.Conditions, "SchedulerReachable")
		return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "cannot retire"),
			fmt.Sprintf("condition %+v", c)
	})
	eventually(t, 5*time.Second, func() (bool, string) {
		return hasEvent(t, ns, "simple-default", corev1.EventTypeWarning, "RetireWorkersFailed"), "no RetireWorkersFailed event"
	})
	// Until the fallback timeout, every running worker stays.
	for time.Since(start) < retireFallback-2*time.Second {
		require.Len(t, workerPods(t, ns, "simple", "simple-default"), 3, "a running worker was deleted before the fallback timeout")
		time.Sleep(200 * time.Millisecond)
	}
	after := waitWorkers(t, ns, "simple", "simple-default", 1, 30*time.Second)
	assert.GreaterOrEqual(t, time.Since(start), retireFallback-time.Second)
	eventually(t, 5*time.Second, func() (bool, string) {
		return hasEvent(t, ns, "simple-default", corev1.EventTypeWarning, "FallbackScaleDown"), "no FallbackScaleDown event"
	})
	// The oldest worker is kept.
	oldest := before[0]
	for _, p := range before {
		if p.CreationTimestamp.Before(&oldest.CreationTimestamp) {
			oldest = p
		}
	}
	if !oldest.CreationTimestamp.Equal(&before[len(before)-1].CreationTimestamp) || len(before) == 1 {
		assert.Equal(t, oldest.Name, after[0].Name)
	}
}

// A worker whose Pod runs but is not Ready (its readiness probe fails under
// load) may hold results: it is not deleted without the scheduler (issue
// 15, item 3). With the scheduler unreachable it stays until the fallback,
// which then takes it before the Ready one.
func TestScaleDownKeepsRunningUnreadyWorkersForTheScheduler(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		setDashboardPort(t, u, []string{"spec", "scheduler"}, freePort(t))
	})
	pods := waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	// Mark one worker not ready, the way a kubelet would.
	ctx := context.Background()
	p, err := kube.CoreV1().Pods(ns).Get(ctx, pods[1].Name, metav1.GetOptions{})
	require.NoError(t, err)
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	_, err = kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)

	start := time.Now()
	kubectl(t, "scale", "-n", ns, "daskcluster", "simple", "--replicas=1")
	for time.Since(start) < retireFallback-2*time.Second {
		require.Len(t, workerPods(t, ns, "simple", "simple-default"), 2, "a running worker was deleted without the scheduler")
		time.Sleep(200 * time.Millisecond)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		left := workerPods(t, ns, "simple", "simple-default")
		return len(left) == 1 && left[0].Name == pods[0].Name, fmt.Sprintf("left: %v", podNames(left))
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
