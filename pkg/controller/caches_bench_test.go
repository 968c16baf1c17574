package controller

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	daskscheme "github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned/scheme"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// runningWorkerPod is a worker Pod as the API server sends it once a node
// runs it: the operator's Pod with what a kubelet (or kwok) reports.
func runningWorkerPod(i int) *corev1.Pod {
	// Three workers per cluster, as in make bench.
	name := fmt.Sprintf("bench-%05d", i/3)
	c := testobjects.Cluster(name)
	c.UID = types.UID(fmt.Sprintf("7c1d2e3f-4a5b-4c6d-8e9f-%012x", i/3))
	c.Labels = map[string]string{"team": "analytics"}
	c.Spec.Worker.Spec.Containers[0].Image = "ghcr.io/dask/dask:2026.1.0"
	c.Spec.Worker.Spec.Containers[0].Args = []string{"dask-worker", "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address", "8788"}
	g := testobjects.Group(name+"-default", name, 3)
	g.UID = types.UID(fmt.Sprintf("9a8b7c6d-5e4f-4a3b-8c2d-%012x", i/3))
	g.Spec.Worker.Spec = c.Spec.Worker.Spec
	p := resources.WorkerPod(g, c, fmt.Sprintf("%s-default-worker-%05x", name, i), "cluster.local")
	p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	p.UID = types.UID(fmt.Sprintf("0f3a6c1e-4b2d-4e8a-9c7f-%012x", i))
	p.ResourceVersion = fmt.Sprint(100000 + i)
	p.CreationTimestamp = metav1.NewTime(time.Unix(1_790_000_000, 0))
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "dask-operator", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1"}}
	p.Spec.NodeName = "node-1"
	p.Spec.RestartPolicy = corev1.RestartPolicyAlways
	at := metav1.NewTime(time.Unix(1_790_000_003, 0))
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.1.0.1", PodIP: "10.244.1.7",
		HostIPs: []corev1.HostIP{{IP: "10.1.0.1"}}, PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}},
		StartTime: &at, QOSClass: corev1.PodQOSBestEffort}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized,
		corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: at})
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "worker", Ready: true, Image: "ghcr.io/dask/dask:2026.1.0",
		ImageID:     "ghcr.io/dask/dask@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		ContainerID: "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}}}
	return p
}

// BenchmarkCachedPodBytes reports how many bytes of heap each cached worker
// Pod holds: Pods decoded from the API server's protobuf, as the informer
// does, then trimmed by the cache's transform. The Pod cache is most of the
// operator's memory (four Pods per cluster).
//
//	go test -run - -bench CachedPodBytes ./pkg/controller
func BenchmarkCachedPodBytes(b *testing.B) {
	codecs := serializer.NewCodecFactory(scheme.Scheme)
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), "application/vnd.kubernetes.protobuf")
	if !ok {
		b.Fatal("no protobuf serializer")
	}
	const n = 5000
	wire := make([][]byte, n)
	for i := range wire {
		data, err := runtime.Encode(info.Serializer, runningWorkerPod(i))
		if err != nil {
			b.Fatal(err)
		}
		wire[i] = data
	}
	cachedBytes(b, wire, codecs.UniversalDeserializer(), TrimPod, "bytes/pod")
}

// BenchmarkCachedClusterBytes is BenchmarkCachedPodBytes for DaskClusters,
// decoded from JSON (custom resources have no protobuf) and compacted by
// the cache's transform.
func BenchmarkCachedClusterBytes(b *testing.B) {
	const n = 5000
	wire := make([][]byte, n)
	for i := range wire {
		c := testobjects.Cluster(fmt.Sprintf("bench-%05d", i))
		c.TypeMeta = metav1.TypeMeta{APIVersion: "kubernetes.dask.org/v1", Kind: "DaskCluster"}
		c.Spec.Worker.Spec.Containers[0].Image = "ghcr.io/dask/dask:2026.1.0"
		c.Spec.Worker.Spec.Containers[0].Args = []string{"dask-worker", "--name", "$(DASK_WORKER_NAME)"}
		c.Spec.Scheduler.Spec.Containers[0].Image = "ghcr.io/dask/dask:2026.1.0"
		c.Spec.Scheduler.Spec.Containers[0].Args = []string{"dask-scheduler"}
		c.Status.Phase = daskv1.DaskClusterRunning
		for _, ty := range []string{daskv1.ConditionResourcesCreated, daskv1.ConditionSchedulerReady, daskv1.ConditionWorkersReady, daskv1.ConditionWorkersUpdated, daskv1.ConditionServiceSelectsScheduler} {
			c.Status.Conditions = append(c.Status.Conditions, metav1.Condition{Type: ty, Status: metav1.ConditionTrue,
				Reason: "AllReady", Message: "3/3 workers ready", LastTransitionTime: metav1.NewTime(time.Unix(1_790_000_000, 0))})
		}
		data, err := json.Marshal(c)
		if err != nil {
			b.Fatal(err)
		}
		wire[i] = data
	}
	codecs := serializer.NewCodecFactory(daskscheme.Scheme)
	cachedBytes(b, wire, codecs.UniversalDeserializer(), compactDaskObject, "bytes/cluster")
}

// cachedBytes decodes every object of wire, as an informer does, keeps what
// transform returns, and reports the heap that holds per object.
func cachedBytes(b *testing.B, wire [][]byte, decoder runtime.Decoder, transform func(any) (any, error), unit string) {
	for b.Loop() {
		kept := make([]any, 0, len(wire))
		goruntime.GC()
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		for _, data := range wire {
			obj, _, err := decoder.Decode(data, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			kept1, err := transform(obj)
			if err != nil {
				b.Fatal(err)
			}
			kept = append(kept, kept1)
		}
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(wire)), unit)
		goruntime.KeepAlive(kept)
	}
}
