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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// Scaling down asks the scheduler which workers to retire: it keeps the one
// that holds data and retires the idle ones, whose Pods then go.
// The cluster sets no scheduler HTTP routes (a stock spec): the operator
// enables the API that graceful scale-down uses (issue 14, part 2).
// On each Dask release the node has (issue 28): distributed before 2025.9
// may answer the retire with HTTP 500 once it has retired the workers.
func TestScaleDownRetiresTheWorkersTheSchedulerChooses(t *testing.T) {
	eachDask(t, testScaleDownRetires)
}

func testScaleDownRetires(t *testing.T, d testenv.DaskImage) {
	ns := newNamespace(t)
	createClusterOn(t, d, ns, "down", 3)
	ip := schedulerIP(t, ns, "down")
	pods := waitRegistered(t, ns, "down", "down-default", ip, 3, 2*time.Minute)

	// Data on the last worker by name: the one a blind scale-down (newest,
	// or last by name) would pick first.
	keeper := pods[len(pods)-1]
	c := startClientOn(t, d, `
import time
from dask.distributed import Client, wait
c = Client("tcp://`+ip+`:8786", timeout=30)
v = c.get_versions()["scheduler"]["packages"]["distributed"]
assert v.startswith("`+d.Version+`"), v
addr = [a for a, w in c.scheduler_info()["workers"].items() if w["name"] == "`+keeper+`"][0]
data = c.submit(lambda: b"x" * 50_000_000, workers=[addr], pure=False)
wait(data)
print("holding", c.who_has(data)[data.key][0], flush=True)
while True:
    time.sleep(1)
`)
	c.WaitLine(t, "holding", time.Minute)

	_, err := dask.KubernetesV1().DaskClusters(ns).Patch(context.Background(), "down", types.MergePatchType,
		[]byte(`{"spec":{"worker":{"replicas":1}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	left := waitRegistered(t, ns, "down", "down-default", ip, 1, 2*time.Minute)
	assert.Equal(t, []string{keeper}, left, "the scheduler keeps the worker with data")

	evs, err := kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=down-default"})
	require.NoError(t, err)
	var reasons []string
	for _, e := range evs.Items {
		reasons = append(reasons, e.Reason+": "+e.Message)
		assert.NotEqual(t, corev1.EventTypeWarning, e.Type, "no warning while scaling down: %s %s", e.Reason, e.Message)
	}
	assert.True(t, strings.Contains(strings.Join(reasons, "\n"), "Retired and deleted 2 workers"), fmt.Sprintf("events: %v", reasons))
}

// Issue 16, fault 5 on real Dask: the scheduler is killed as a scale-down
// begins. A new scheduler replaces it, the workers join
// it, and the group ends with the one worker asked for; every worker Pod
// that went is accounted for by an event (retired by a scheduler, or the
// announced fallback), none silently.
func TestSchedulerKilledDuringScaleDown(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	createCluster(t, ns, "sk", 3)
	ip := schedulerIP(t, ns, "sk")
	waitRegistered(t, ns, "sk", "sk-default", ip, 3, 2*time.Minute)
	old, err := kube.CoreV1().Pods(ns).Get(ctx, "sk-scheduler", metav1.GetOptions{})
	require.NoError(t, err)

	// The scheduler dies as the scale-down begins: the retire meets no
	// scheduler, or the new one before the workers have joined it.
	zero := int64(0)
	require.NoError(t, kube.CoreV1().Pods(ns).Delete(ctx, "sk-scheduler", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	_, err = dask.KubernetesV1().DaskClusters(ns).Patch(ctx, "sk", types.MergePatchType,
		[]byte(`{"spec":{"worker":{"replicas":1}}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	eventually(t, 4*time.Minute, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "sk-scheduler", metav1.GetOptions{})
		if err != nil || p.UID == old.UID || !isReady(p) {
			return false, fmt.Sprint("waiting for the new scheduler: ", err)
		}
		pods := workerPods(t, ns, "sk", "sk-default")
		registered, err := registeredWorkers(p.Status.PodIP)
		if err != nil {
			return false, err.Error()
		}
		return len(pods) == 1 && strings.Join(pods, ",") == strings.Join(registered, ","),
			fmt.Sprintf("worker Pods %v, registered with the new scheduler %v", pods, registered)
	})
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=sk-default"})
	require.NoError(t, err)
	accounted := 0
	var seen []string
	for _, e := range evs.Items {
		seen = append(seen, e.Reason+": "+e.Message)
		var n int
		switch {
		case e.Reason == "ScaledDown" && strings.HasPrefix(e.Message, "Retired and deleted "):
			_, _ = fmt.Sscanf(e.Message, "Retired and deleted %d", &n)
		case e.Reason == "ScaledDown" && strings.HasPrefix(e.Message, "Deleted "):
			_, _ = fmt.Sscanf(e.Message, "Deleted %d", &n)
		case e.Reason == "FallbackScaleDown":
			if i := strings.Index(e.Message, "deleted "); i >= 0 {
				_, _ = fmt.Sscanf(e.Message[i:], "deleted %d", &n)
			}
		}
		accounted += n * int(max(e.Count, 1))
	}
	assert.GreaterOrEqual(t, accounted, 2, "the two workers that went are told of: %v", seen)
	t.Logf("events: %v", seen)
}
