package resources

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func TestTemplateHashFollowsTheSpecOnly(t *testing.T) {
	g := DefaultWorkerGroup(testCluster())
	h := WorkerTemplateHash(g)
	assert.Regexp(t, `^[0-9a-f]{10}$`, h)

	g2 := g.DeepCopy()
	g2.Spec.Worker.Replicas = ptrTo[int32](40)
	g2.Spec.Worker.Metadata.Labels = map[string]string{"new": "label"}
	g2.Labels["x"] = "y"
	assert.Equal(t, h, WorkerTemplateHash(g2), "replicas and metadata are no part of the template")

	g2.Spec.Worker.Spec.Containers[0].Image = "ghcr.io/dask/dask:2099.1.0"
	assert.NotEqual(t, h, WorkerTemplateHash(g2), "an image change makes a new template")

	pod := WorkerPod(g, testCluster(), "w1", "cluster.local")
	assert.False(t, Outdated(pod, h))
	assert.True(t, Outdated(pod, WorkerTemplateHash(g2)))
	delete(pod.Labels, LabelTemplateHash)
	assert.False(t, Outdated(pod, WorkerTemplateHash(g2)), "a Pod made before hashes were recorded counts as current")
}

func TestMetadataPatchNeverRewritesTheTemplateHash(t *testing.T) {
	g := DefaultWorkerGroup(testCluster())
	pod := WorkerPod(g, testCluster(), "w1", "cluster.local")
	g.Spec.Worker.Spec.Containers[0].Image = "other"
	desired := WorkerPod(g, testCluster(), "w1", "cluster.local")
	assert.NotEqual(t, pod.Labels[LabelTemplateHash], desired.Labels[LabelTemplateHash])
	assert.Nil(t, MetadataPatch(pod, desired), "the hash tells what the Pod was made from: no patch")

	desired.Labels["added"] = "1"
	assert.JSONEq(t, `{"metadata":{"labels":{"added":"1"}}}`, string(MetadataPatch(pod, desired)),
		"other labels are still passed on")
}

func TestWorkerRolloutDefaultsAndRounding(t *testing.T) {
	spec := func(replicas int32, st *daskv1.WorkerUpdateStrategy) *daskv1.WorkerSpec {
		return &daskv1.WorkerSpec{Replicas: &replicas, Strategy: st}
	}
	pct := intstr.FromString
	num := intstr.FromInt32
	for _, tc := range []struct {
		name               string
		w                  *daskv1.WorkerSpec
		surge, unavailable int
		onDelete           bool
	}{
		{"defaults: 25% up, 0 down", spec(6, nil), 2, 0, false},
		{"25% of 1 rounds up to 1", spec(1, nil), 1, 0, false},
		{"0 replicas: one may still surge", spec(0, nil), 1, 0, false},
		{"numbers", spec(10, &daskv1.WorkerUpdateStrategy{RollingUpdate: &daskv1.RollingUpdateWorkers{MaxSurge: ptrTo(num(3)), MaxUnavailable: ptrTo(num(2))}}), 3, 2, false},
		{"maxUnavailable rounds down", spec(10, &daskv1.WorkerUpdateStrategy{RollingUpdate: &daskv1.RollingUpdateWorkers{MaxSurge: ptrTo(num(0)), MaxUnavailable: ptrTo(pct("15%"))}}), 0, 1, false},
		{"both round to 0: one surges", spec(3, &daskv1.WorkerUpdateStrategy{RollingUpdate: &daskv1.RollingUpdateWorkers{MaxSurge: ptrTo(pct("0%")), MaxUnavailable: ptrTo(pct("10%"))}}), 1, 0, false},
		{"maxUnavailable above replicas is replicas", spec(2, &daskv1.WorkerUpdateStrategy{RollingUpdate: &daskv1.RollingUpdateWorkers{MaxUnavailable: ptrTo(num(5))}}), 1, 2, false},
		{"OnDelete", spec(4, &daskv1.WorkerUpdateStrategy{Type: daskv1.OnDeleteStrategy}), 1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := WorkerRollout(tc.w)
			assert.Equal(t, tc.surge, r.MaxSurge, "maxSurge")
			assert.Equal(t, tc.unavailable, r.MaxUnavailable, "maxUnavailable")
			assert.Equal(t, tc.onDelete, r.OnDelete)
			assert.Equal(t, DefaultProgressDeadline, r.ProgressDeadline)
		})
	}
	r := WorkerRollout(spec(2, &daskv1.WorkerUpdateStrategy{ProgressDeadlineSeconds: ptrTo[int32](5)}))
	assert.Equal(t, 5*time.Second, r.ProgressDeadline)
}

func TestChangedFieldsNamesWhatTheTemplateChanges(t *testing.T) {
	want := corev1.PodSpec{Containers: []corev1.Container{{
		Name: "scheduler", Image: "dask:2", Args: []string{"dask-scheduler"},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}},
	}}}
	// The live Pod: the old image, no limits, and fields the API server defaulted.
	have := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "scheduler", Image: "dask:1", Args: []string{"dask-scheduler"},
			TerminationMessagePath: "/dev/termination-log", ImagePullPolicy: corev1.PullIfNotPresent,
		}},
		RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: corev1.DNSClusterFirst,
		TerminationGracePeriodSeconds: ptrTo[int64](30),
	}
	assert.Equal(t, []string{"spec.containers[0].image", "spec.containers[0].resources.limits.memory"}, ChangedFields(&want, &have))
	have.Containers[0].Image = "dask:2"
	have.Containers[0].Resources = want.Containers[0].Resources
	assert.Empty(t, ChangedFields(&want, &have), "defaults the API server filled in are no change")
	have.Containers = append(have.Containers, corev1.Container{Name: "sidecar"})
	assert.Equal(t, []string{"spec.containers"}, ChangedFields(&want, &have))
}

func ptrTo[T any](v T) *T { return &v }

func TestSchedulerAddressesInStatus(t *testing.T) {
	c := testCluster()
	assert.Equal(t, "tcp://demo-scheduler.ns.svc.cluster.local:9786", SchedulerAddress(c, "cluster.local"))
	assert.Equal(t, "http://demo-scheduler.ns.svc.example.org:9787", DashboardURL(c, "example.org"))

	svc := SchedulerService(c)
	a, d := ExternalAddresses(c, svc)
	assert.Empty(t, a+d, "a ClusterIP Service has no external address")
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	a, d = ExternalAddresses(c, svc)
	assert.Empty(t, a+d, "nor a LoadBalancer without ingress")
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "lb.example.org"}}
	a, d = ExternalAddresses(c, svc)
	assert.Equal(t, "tcp://lb.example.org:9786", a)
	assert.Equal(t, "http://lb.example.org:9787", d)
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "2001:db8::1"}}
	a, _ = ExternalAddresses(c, svc)
	assert.Equal(t, "tcp://[2001:db8::1]:9786", a)
}
