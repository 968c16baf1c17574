package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The Python KubeCluster client (dask_kubernetes.operator) drives the
// operator only through the API server. It cannot be installed here, so this
// test sends what it sends, in its order and with its bodies (nulls
// included), and checks what it waits for, with real Dask behind:
// KubeCluster(name, n_workers=2) connecting through a port-forward to the
// scheduler Service, from_name, scale, adapt, scale again (which
// deletes the autoscaler), add_worker_group, delete_worker_group, get_logs
// (Pod logs through the API server) and close.
func TestKubeClusterClientWorkflow(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	rc := dask.KubernetesV1().RESTClient()

	// KubeCluster(name="kc", n_workers=2): make_cluster_spec, then POST.
	worker := func(replicas int) map[string]any {
		return map[string]any{
			"replicas": replicas,
			"spec": map[string]any{"containers": []any{map[string]any{
				"name": "worker", "image": "ghcr.io/dask/dask:latest",
				"args": []any{"dask-worker", "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address", "8788"},
				"env":  nil, "resources": nil,
				"ports": []any{map[string]any{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}},
			}}},
		}
	}
	probe := map[string]any{"port": "http-dashboard", "path": "/health"}
	cluster := map[string]any{
		"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskCluster",
		"metadata": map[string]any{"name": "kc"},
		"spec": map[string]any{
			"idleTimeout": 0,
			"worker":      worker(2),
			"scheduler": map[string]any{
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "scheduler", "image": "ghcr.io/dask/dask:latest",
					"args": []any{"dask-scheduler", "--host", "0.0.0.0"},
					"env":  nil, "resources": nil,
					"ports": []any{
						map[string]any{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
						map[string]any{"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"},
					},
					"readinessProbe": map[string]any{"httpGet": probe, "initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 300},
					"livenessProbe":  map[string]any{"httpGet": probe, "initialDelaySeconds": 15, "periodSeconds": 20},
				}}},
				"service": map[string]any{
					"type":     "ClusterIP",
					"selector": map[string]any{"dask.org/cluster-name": "kc", "dask.org/component": "scheduler"},
					"ports": []any{
						map[string]any{"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
						map[string]any{"name": "http-dashboard", "protocol": "TCP", "port": 8787, "targetPort": "http-dashboard"},
					},
				},
			},
		},
	}
	require.NoError(t, rc.Post().Namespace(ns).Resource("daskclusters").Body(mustJSON(t, cluster)).Do(ctx).Error())

	// _wait_for_controller: status.phase becomes Running (60 s by default).
	eventually(t, time.Minute, func() (bool, string) {
		obj := getRaw(t, ns, "daskclusters", "kc")
		phase, _ := obj["status"].(map[string]any)["phase"].(string)
		return phase == "Running", "phase " + phase
	})
	// wait_for_scheduler, by label selector; wait_for_service.
	var schedIP string
	eventually(t, 2*time.Minute, func() (bool, string) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "dask.org/component=scheduler,dask.org/cluster-name=kc"})
		require.NoError(t, err)
		if len(pods.Items) != 1 {
			return false, fmt.Sprintf("%d scheduler Pods", len(pods.Items))
		}
		p := &pods.Items[0]
		schedIP = p.Status.PodIP
		return p.Status.Phase == "Running" && isReady(p), fmt.Sprintf("scheduler Pod %s, ready %v", p.Status.Phase, isReady(p))
	})
	_, err := kube.CoreV1().Services(ns).Get(ctx, "kc-scheduler", metav1.GetOptions{})
	require.NoError(t, err)
	waitRegistered(t, ns, "kc", "kc-default", schedIP, 2, 2*time.Minute)

	// Outside the cluster the client forwards a local port to the Service's
	// tcp-comm port and connects to localhost.
	local := portForward(t, env.Kubeconfig, ns, "svc/kc-scheduler", 8786)
	c := startClient(t, `
from dask.distributed import Client
c = Client("tcp://127.0.0.1:`+local+`", timeout=30)
print("result", c.submit(sum, range(1000)).result(), flush=True)
`)
	assert.Equal(t, " 499500", c.WaitLine(t, "result", time.Minute))

	// KubeCluster.from_name reads these fields of the cluster.
	obj := getRaw(t, ns, "daskclusters", "kc")
	spec := obj["spec"].(map[string]any)
	assert.EqualValues(t, 2, spec["worker"].(map[string]any)["replicas"])
	wc := spec["worker"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	assert.Equal(t, "ghcr.io/dask/dask:latest", wc["image"])
	sc := spec["scheduler"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	assert.NotContains(t, sc["args"], "--jupyter")

	// scale(3): delete the autoscaler if any, merge-patch the default
	// group's spec.worker.replicas, and wait until the group says 3.
	scale := func(group string, n int) {
		t.Helper()
		err := rc.Delete().Namespace(ns).Resource("daskautoscalers").Name("kc").Do(ctx).Error()
		require.True(t, err == nil || apierrors.IsNotFound(err), "delete autoscaler: %v", err)
		patch := fmt.Sprintf(`{"spec":{"worker":{"replicas":%d}}}`, n)
		require.NoError(t, rc.Patch(types.MergePatchType).Namespace(ns).Resource("daskworkergroups").Name(group).
			Body([]byte(patch)).Do(ctx).Error())
		eventually(t, 10*time.Second, func() (bool, string) {
			r := replicasOf(t, ns, group)
			return r == n, fmt.Sprintf("group %s says %d replicas", group, r)
		})
	}
	scale("kc-default", 3)
	waitRegistered(t, ns, "kc", "kc-default", schedIP, 3, 2*time.Minute)

	// adapt(minimum=1, maximum=2): PATCH, and on 404 POST the autoscaler
	// (with the client's stray metadata keys, which the API server drops).
	err = rc.Patch(types.MergePatchType).Namespace(ns).Resource("daskautoscalers").Name("kc").
		Body([]byte(`{"spec":{"minimum":1,"maximum":2}}`)).Do(ctx).Error()
	require.True(t, apierrors.IsNotFound(err), "no autoscaler yet: %v", err)
	require.NoError(t, rc.Post().Namespace(ns).Resource("daskautoscalers").Body(mustJSON(t, map[string]any{
		"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskAutoscaler",
		"metadata": map[string]any{"name": "kc", "dask.org/cluster-name": "kc", "dask.org/component": "autoscaler"},
		"spec":     map[string]any{"cluster": "kc", "minimum": 1, "maximum": 2},
	})).Do(ctx).Error())
	// Nothing to do: the scheduler asks for the minimum.
	waitRegistered(t, ns, "kc", "kc-default", schedIP, 1, 3*time.Minute)

	// scale(2) turns adaptivity off: the autoscaler is deleted and the
	// group keeps what the user asked for.
	scale("kc-default", 2)
	waitRegistered(t, ns, "kc", "kc-default", schedIP, 2, 2*time.Minute)
	time.Sleep(5 * time.Second) // longer than the test operator's cooldown and stabilization
	assert.Equal(t, 2, replicasOf(t, ns, "kc-default"), "no autoscaler is left to shrink the group")

	// add_worker_group("highmem", n_workers=1).
	require.NoError(t, rc.Post().Namespace(ns).Resource("daskworkergroups").Body(mustJSON(t, map[string]any{
		"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskWorkerGroup",
		"metadata": map[string]any{"name": "kc-highmem", "namespace": ns},
		"spec":     map[string]any{"cluster": "kc", "worker": worker(1)},
	})).Do(ctx).Error())
	eventually(t, 2*time.Minute, func() (bool, string) {
		registered, err := registeredWorkers(schedIP)
		if err != nil {
			return false, err.Error()
		}
		want := append(workerPods(t, ns, "kc", "kc-default"), workerPods(t, ns, "kc", "kc-highmem")...)
		slices.Sort(want) // registered comes sorted
		return len(want) == 3 && slices.Equal(want, registered), fmt.Sprintf("worker Pods %v, registered %v", want, registered)
	})

	// delete_worker_group("highmem"): its worker leaves the scheduler.
	require.NoError(t, rc.Delete().Namespace(ns).Resource("daskworkergroups").Name("kc-highmem").Do(ctx).Error())
	waitRegistered(t, ns, "kc", "kc-default", schedIP, 2, 2*time.Minute)

	// get_logs lists the cluster's Pods by dask.org/cluster-name.
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "dask.org/cluster-name=kc"})
	require.NoError(t, err)
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && (strings.Contains(p.Name, "scheduler") || strings.Contains(p.Name, "worker")) {
			names = append(names, p.Name)
		}
	}
	assert.Len(t, names, 3, "the scheduler and two workers: %v", names)
	for _, name := range names {
		log, err := kube.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
		require.NoError(t, err, "logs of %s", name)
		want := "Start worker at:"
		if strings.Contains(name, "scheduler") {
			want = "Scheduler at:"
		}
		assert.Contains(t, string(log), want, "logs of %s", name)
	}

	// close(): DELETE the cluster and wait until it is gone; everything it
	// made goes with it.
	require.NoError(t, rc.Delete().Namespace(ns).Resource("daskclusters").Name("kc").Do(ctx).Error())
	eventually(t, 2*time.Minute, func() (bool, string) {
		err := rc.Get().Namespace(ns).Resource("daskclusters").Name("kc").Do(ctx).Error()
		pods, lerr := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "dask.org/cluster-name=kc"})
		require.NoError(t, lerr)
		return apierrors.IsNotFound(err) && len(pods.Items) == 0, fmt.Sprintf("cluster: %v, %d Pods left", err, len(pods.Items))
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func getRaw(t *testing.T, ns, resource, name string) map[string]any {
	t.Helper()
	body, err := dask.KubernetesV1().RESTClient().Get().Namespace(ns).Resource(resource).Name(name).DoRaw(context.Background())
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(body, &obj))
	if _, ok := obj["status"].(map[string]any); !ok {
		obj["status"] = map[string]any{}
	}
	return obj
}

// replicasOf reads a worker group's spec.worker.replicas as the client does.
func replicasOf(t *testing.T, ns, group string) int {
	t.Helper()
	obj := getRaw(t, ns, "daskworkergroups", group)
	n, _ := obj["spec"].(map[string]any)["worker"].(map[string]any)["replicas"].(float64)
	return int(n)
}
