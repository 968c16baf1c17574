package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// A rolling update of the workers on real Dask while a client holds results
// in worker memory and keeps computing: every old worker is retired (its
// results move to other workers) before its Pod goes, so the held results
// are all there afterwards, none computed twice, and the computation that
// ran during the rollout is complete and correct.
//
// On Dask 2026 (the latest image), with the new template starting the
// removed dask-worker command, as the Python client writes it.
func TestRollingUpdateKeepsResults(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir() // the tasks' traces: seen by the workers and the client
	spec := clusterSpec(3)
	shareWithWorkers(&spec, dir)
	_, err := dask.KubernetesV1().DaskClusters(ns).Create(context.Background(), &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "roll", Namespace: ns}, Spec: spec,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	ip := schedulerIP(t, ns, "roll")
	before := waitRegistered(t, ns, "roll", "roll-default", ip, 3, 2*time.Minute)

	runs, gather := filepath.Join(dir, "runs"), filepath.Join(dir, "gather")
	c := startClientOn(t, env.Latest(), `
import os, time
from dask.distributed import Client, wait
c = Client("tcp://`+ip+`:8786", timeout=30)
def held(i):
    with open("`+runs+`", "a") as f:
        f.write(f"{i}\n")
    return (i, b"x" * 1_000_000)
def slow(i):
    time.sleep(0.2)
    return i * i
first = c.map(held, range(60), pure=False)
wait(first)
print("computed", len(c.who_has(first)), flush=True)
second = c.map(slow, range(100), pure=False)
while not os.path.exists("`+gather+`"):
    time.sleep(0.2)
total = sum(i for i, data in c.gather(first) if len(data) == 1_000_000)
print("held", total, flush=True)
print("during", sum(c.gather(second)), flush=True)
`, dir)
	c.WaitLine(t, "computed", 2*time.Minute)

	_, err = dask.KubernetesV1().DaskClusters(ns).Patch(context.Background(), "roll", types.MergePatchType,
		[]byte(`{"spec":{"worker":{"spec":{"containers":[{"name":"worker","image":"ghcr.io/dask/dask:latest",
		"args":["dask-worker","--name","$(DASK_WORKER_NAME)","--nthreads","1","--dashboard-address","8788"],
		"env":[{"name":"ROLLED","value":"1"}],"ports":[{"name":"http-dashboard","containerPort":8788}],
		"volumeMounts":[{"name":"shared","mountPath":"`+dir+`"}]}]}}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, 3*time.Minute, func() (bool, string) {
		pods := workerPods(t, ns, "roll", "roll-default")
		registered, err := registeredWorkers(ip)
		if err != nil {
			return false, err.Error()
		}
		g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(context.Background(), "roll-default", metav1.GetOptions{})
		require.NoError(t, err)
		for _, name := range pods {
			if contains(before, name) {
				return false, "old worker " + name + " still runs"
			}
		}
		return len(pods) == 3 && strings.Join(pods, ",") == strings.Join(registered, ",") && g.Status.UpdatedReplicas == 3,
			"worker Pods " + strings.Join(pods, ",") + ", registered " + strings.Join(registered, ",")
	})
	require.NoError(t, os.WriteFile(gather, nil, 0o644))
	assert.Equal(t, "1770", strings.TrimSpace(c.WaitLine(t, "held", 2*time.Minute)), "every held result is there (sum of 0..59)")
	assert.Equal(t, "328350", strings.TrimSpace(c.WaitLine(t, "during", 2*time.Minute)), "the computation during the rollout is complete")
	data, err := os.ReadFile(runs)
	require.NoError(t, err)
	assert.Len(t, strings.Fields(string(data)), 60, "no held result was lost and computed again")
	evs, err := kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=roll-default"})
	require.NoError(t, err)
	var reasons []string
	for _, e := range evs.Items {
		reasons = append(reasons, e.Reason)
		assert.NotEqual(t, "FallbackScaleDown", e.Reason, e.Message)
	}
	assert.Contains(t, reasons, "RolloutComplete")
}
