package resources

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func int32p(v int32) *int32 { return &v }

func testCluster() *daskv1.DaskCluster {
	return &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{
			Name: "demo", Namespace: "ns", UID: "cluster-uid",
			Labels: map[string]string{"team": "a", "dask.org/component": "user-tries-to-override"},
			Annotations: map[string]string{
				"note":                       "kept",
				"kopf.zalando.org/last":      "dropped",
				"kubectl.kubernetes.io":      "dropped",
				"kubectl.kubernetes.io/last": "dropped",
				"kopf.zalando.orgish":        "dropped: a plain prefix match",
			},
		},
		Spec: daskv1.DaskClusterSpec{
			Worker: daskv1.WorkerSpec{
				Replicas: int32p(3),
				Metadata: daskv1.EmbeddedMetadata{Labels: map[string]string{"team": "workers", "w": "1"}, Annotations: map[string]string{"wa": "1"}},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "init"}},
					Containers: []corev1.Container{
						{Name: "worker", Env: []corev1.EnvVar{{Name: "DASK_WORKER_NAME", Value: "mine"}}},
						{Name: "sidecar"},
					},
				},
			},
			Scheduler: daskv1.SchedulerSpec{
				Metadata: daskv1.EmbeddedMetadata{Labels: map[string]string{"s": "1"}, Annotations: map[string]string{"sa": "1"}},
				Spec:     corev1.PodSpec{Containers: []corev1.Container{{Name: "scheduler"}}},
				Service: corev1.ServiceSpec{Ports: []corev1.ServicePort{
					{Name: "tcp-comm", Port: 9786, TargetPort: intstr.FromString("tcp-comm")},
					{Name: "http-dashboard", Port: 9787},
				}},
			},
		},
	}
}

func TestAnnotationFilter(t *testing.T) {
	got := MergeAnnotations(map[string]string{"a": "1", "kopf.zalando.org/x": "2"}, map[string]string{"a": "3", "kubectl.kubernetes.io/y": "4"})
	assert.Equal(t, map[string]string{"a": "3"}, got, "later maps win; filtered prefixes never pass")
	assert.Nil(t, MergeAnnotations(map[string]string{"kopf.zalando.org": "x"}))
}

func TestSchedulerPodAndService(t *testing.T) {
	c := testCluster()
	pod := SchedulerPod(c)
	assert.Equal(t, "demo-scheduler", pod.Name)
	assert.Equal(t, map[string]string{
		"team": "a", "s": "1", "dask.org/cluster-name": "demo", "dask.org/component": "scheduler", "sidecar.istio.io/inject": "false",
		LabelTemplateHash: SchedulerTemplateHash(c),
	}, pod.Labels, "the operator's labels are applied last")
	assert.Equal(t, map[string]string{
		"note": "kept", "sa": "1",
		AnnotationPropagatedLabels: "s,team", AnnotationPropagatedAnnotations: "note,sa",
	}, pod.Annotations, "what came from the parents is listed")
	require.Len(t, pod.OwnerReferences, 1)
	assert.Equal(t, "DaskCluster", pod.OwnerReferences[0].Kind)
	assert.True(t, *pod.OwnerReferences[0].Controller)
	assert.Equal(t, []corev1.EnvVar{{Name: EnvSchedulerHTTPRoutes, Value: DefaultSchedulerHTTPRoutes}}, pod.Spec.Containers[0].Env,
		"the scheduler gets only its HTTP API route")

	svc := SchedulerService(c)
	assert.Equal(t, "demo-scheduler", svc.Name)
	assert.Equal(t, map[string]string{"dask.org/cluster-name": "demo", "dask.org/component": "scheduler"}, svc.Spec.Selector,
		"an empty selector is defaulted to the scheduler Pod")
	assert.NotContains(t, svc.Labels, "sidecar.istio.io/inject")
	c.Spec.Scheduler.Service.Selector = map[string]string{"custom": "yes"}
	assert.Equal(t, map[string]string{"custom": "yes"}, SchedulerService(c).Spec.Selector, "a user's selector is kept")
	assert.Empty(t, c.Spec.Scheduler.Spec.Containers[0].Env, "builders never modify their input")
}

func TestWorkerPodOfTheDefaultGroup(t *testing.T) {
	c := testCluster()
	g := DefaultWorkerGroup(c)
	assert.Equal(t, "demo-default", g.Name)
	assert.Equal(t, "demo", g.Spec.Cluster)
	assert.Equal(t, "workergroup", g.Labels["dask.org/component"])
	assert.Equal(t, "3", g.Annotations[AnnotationSyncedReplicas])
	assert.Equal(t, "kept", g.Annotations["note"])
	assert.NotContains(t, g.Annotations, "kopf.zalando.org/last")

	name := NewWorkerName(g.Name)
	assert.Regexp(t, `^demo-default-worker-[0-9a-f]{10}$`, name)
	assert.NotEqual(t, name, NewWorkerName(g.Name))

	pod := WorkerPod(g, c, name, "cluster.local")
	assert.Equal(t, map[string]string{
		"team": "workers", "w": "1",
		"dask.org/cluster-name": "demo", "dask.org/component": "worker", "dask.org/workergroup-name": "demo-default",
		"sidecar.istio.io/inject": "false", LabelTemplateHash: WorkerTemplateHash(g),
	}, pod.Labels)
	assert.Equal(t, map[string]string{
		"note": "kept", "wa": "1",
		AnnotationPropagatedLabels: "team,w", AnnotationPropagatedAnnotations: "note,wa",
	}, pod.Annotations, "the group's own bookkeeping is not passed on")
	assert.Equal(t, "DaskWorkerGroup", pod.OwnerReferences[0].Kind)

	worker, sidecar := pod.Spec.Containers[0], pod.Spec.Containers[1]
	assert.Equal(t, []corev1.EnvVar{
		{Name: "DASK_WORKER_NAME", Value: "mine"},
		{Name: "DASK_SCHEDULER_ADDRESS", Value: "tcp://demo-scheduler.ns.svc.cluster.local:9786"},
	}, worker.Env, "a user's value wins and is not duplicated; the comm port comes from the Service")
	assert.Equal(t, []corev1.EnvVar{
		{Name: "DASK_WORKER_NAME", Value: name},
		{Name: "DASK_SCHEDULER_ADDRESS", Value: "tcp://demo-scheduler.ns.svc.cluster.local:9786"},
	}, sidecar.Env)
	assert.Empty(t, pod.Spec.InitContainers[0].Env, "init containers get nothing")
	assert.Len(t, c.Spec.Worker.Spec.Containers[1].Env, 0, "builders never modify their input")
}

func TestJobClusterAndRunner(t *testing.T) {
	job := &daskv1.DaskJob{
		ObjectMeta: metav1.ObjectMeta{Name: "train", Namespace: "ns", UID: "job-uid",
			Labels:      map[string]string{"j": "1"},
			Annotations: map[string]string{"ja": "1", "kopf.zalando.org/x": "no"}},
		Spec: daskv1.DaskJobSpec{
			Job: daskv1.JobRunnerSpec{
				Metadata: daskv1.EmbeddedMetadata{Labels: map[string]string{"r": "1"}},
				Spec:     corev1.PodSpec{Containers: []corev1.Container{{Name: "job"}}},
			},
			Cluster: daskv1.JobClusterSpec{
				Metadata: daskv1.EmbeddedMetadata{Labels: map[string]string{"c": "1"}, Annotations: map[string]string{"ca": "1"}},
				Spec:     testCluster().Spec,
			},
		},
	}
	cluster := JobCluster(job)
	assert.Equal(t, "train", cluster.Name)
	assert.Equal(t, map[string]string{"j": "1", "c": "1", "dask.org/cluster-name": "train"}, cluster.Labels,
		"spec.cluster.metadata reaches the cluster")
	assert.Equal(t, map[string]string{"ja": "1", "ca": "1",
		AnnotationPropagatedLabels: "c,j", AnnotationPropagatedAnnotations: "ca,ja"}, cluster.Annotations)
	assert.Equal(t, "DaskJob", cluster.OwnerReferences[0].Kind)

	runner := RunnerPod(job, cluster, "example.org")
	assert.Equal(t, "train-runner", runner.Name)
	assert.Equal(t, corev1.RestartPolicyOnFailure, runner.Spec.RestartPolicy)
	assert.Equal(t, map[string]string{"j": "1", "r": "1", "dask.org/cluster-name": "train", "dask.org/component": "job-runner",
		"sidecar.istio.io/inject": "false"}, runner.Labels)
	assert.Equal(t, map[string]string{"ja": "1",
		AnnotationPropagatedLabels: "j,r", AnnotationPropagatedAnnotations: "ja"}, runner.Annotations)
	assert.Equal(t, []corev1.EnvVar{{Name: "DASK_SCHEDULER_ADDRESS", Value: "tcp://train-scheduler.ns.svc.example.org:9786"}},
		runner.Spec.Containers[0].Env, "the runner gets the scheduler address only")

	job.Spec.Job.Spec.RestartPolicy = corev1.RestartPolicyNever
	assert.Equal(t, corev1.RestartPolicyNever, RunnerPod(job, cluster, "cluster.local").Spec.RestartPolicy)
}

func TestValidateClusterName(t *testing.T) {
	assert.NoError(t, ValidateClusterName("a-53-character-name-is-fine-xxxxxxxxxxxxxxxxxxxxxxxxx"[:53]))
	assert.ErrorContains(t, ValidateClusterName("a-54-character-name-is-too-long-xxxxxxxxxxxxxxxxxxxxxx"), "at most 53")
	assert.ErrorContains(t, ValidateClusterName("Upper"), "DNS label")
}

func TestServiceNeedsUpdateKeepsServerFields(t *testing.T) {
	desired := SchedulerService(testCluster())
	existing := desired.DeepCopy()
	existing.Spec.ClusterIP = "10.0.0.1"
	existing.Spec.Ports[0].NodePort = 30001
	existing.Spec.Ports[0].Protocol = corev1.ProtocolTCP
	existing.Labels["added-by-someone"] = "x"
	_, changed := ServiceNeedsUpdate(existing, desired)
	assert.False(t, changed, "fields the API server or others set are not a difference")

	desired.Spec.Ports[1].Port = 8000
	updated, changed := ServiceNeedsUpdate(existing, desired)
	assert.True(t, changed)
	assert.Equal(t, int32(8000), updated.Spec.Ports[1].Port)
	assert.Equal(t, int32(30001), updated.Spec.Ports[0].NodePort, "an allocated node port is kept")
	assert.Equal(t, "10.0.0.1", updated.Spec.ClusterIP)
}

func TestMetadataPatch(t *testing.T) {
	have := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "1", "extra": "x"}, Annotations: map[string]string{"n": "1"}}}
	want := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "1"}, Annotations: map[string]string{"n": "1"}}}
	assert.Nil(t, MetadataPatch(have, want), "nothing missing: no patch")
	want.Labels["b"] = "2"
	want.Annotations["n"] = "changed"
	assert.JSONEq(t, `{"metadata":{"labels":{"b":"2"},"annotations":{"n":"changed"}}}`, string(MetadataPatch(have, want)))
}

// Labels and annotations the parents no longer carry leave the children;
// those others added, and the operator's own, stay.
func TestMetadataDroppedByTheParentIsRemoved(t *testing.T) {
	c := testCluster()
	c.Labels = map[string]string{"team": "a", "gone": "x"}
	c.Annotations = map[string]string{"note": "kept", "old": "y"}
	pod := SchedulerPod(c)
	pod.Labels["added-by-someone"] = "z"
	pod.Annotations["theirs"] = "z"

	c.Labels = map[string]string{"team": "a"}
	c.Annotations = map[string]string{"note": "kept"}
	assert.JSONEq(t, `{"metadata":{
		"labels":{"gone":null},
		"annotations":{"old":null,"kubernetes.dask.org/propagated-labels":"s,team","kubernetes.dask.org/propagated-annotations":"note,sa"}}}`,
		string(MetadataPatch(pod, SchedulerPod(c))))

	// Every parent's metadata gone: the bookkeeping goes too.
	c.Labels, c.Annotations = nil, nil
	c.Spec.Scheduler.Metadata = daskv1.EmbeddedMetadata{}
	assert.JSONEq(t, `{"metadata":{
		"labels":{"gone":null,"team":null,"s":null},
		"annotations":{"old":null,"note":null,"sa":null,"kubernetes.dask.org/propagated-labels":null,"kubernetes.dask.org/propagated-annotations":null}}}`,
		string(MetadataPatch(pod, SchedulerPod(c))))

	// An object made before the bookkeeping existed only gains keys.
	legacy := pod.DeepCopy()
	delete(legacy.Annotations, AnnotationPropagatedLabels)
	delete(legacy.Annotations, AnnotationPropagatedAnnotations)
	assert.Nil(t, MetadataPatch(legacy, SchedulerPod(c)))

	// The default group's own annotations stay; its workers never get them.
	c = testCluster()
	g := DefaultWorkerGroup(c)
	c.Annotations = nil
	updated, changed := WorkerGroupNeedsUpdate(g, DefaultWorkerGroup(c))
	assert.True(t, changed)
	assert.NotContains(t, updated.Annotations, "note")
	assert.Equal(t, "3", updated.Annotations[AnnotationSyncedReplicas])
	for k := range WorkerPod(g, c, "w", "cluster.local").Annotations {
		assert.NotEqual(t, AnnotationSyncedReplicas, k)
	}
	assert.Equal(t, "note,wa", WorkerPod(g, c, "w", "cluster.local").Annotations[AnnotationPropagatedAnnotations],
		"a worker lists the annotations it got, not the group's list")
}

// Issue 14, part 2: a scheduler that sets no routes gets Dask's defaults
// (with /health, which readiness probes use) plus the API route; a user's
// own value, or an envFrom that may set it, is never changed; a value
// without the API route is reported.
func TestSchedulerHTTPAPIIsEnabledUnlessTheUserSetsRoutes(t *testing.T) {
	c := testCluster()
	c.Spec.Scheduler.Spec.Containers = []corev1.Container{{Name: "scheduler"}, {Name: "sidecar"}}
	pod := SchedulerPod(c)
	require.Len(t, pod.Spec.Containers[0].Env, 1)
	routes := pod.Spec.Containers[0].Env[0].Value
	for _, r := range []string{SchedulerAPIRoute, "distributed.http.health", "distributed.http.scheduler.prometheus", "distributed.http.statics"} {
		assert.Contains(t, routes, `"`+r+`"`)
	}
	assert.Empty(t, pod.Spec.Containers[1].Env, "only the scheduler container")
	assert.Empty(t, c.Spec.Scheduler.Spec.Containers[0].Env, "the cluster's spec is not changed")
	_, disabled := SchedulerAPIDisabled(c)
	assert.False(t, disabled)

	own := `["distributed.http.health"]`
	c.Spec.Scheduler.Spec.Containers[0].Env = []corev1.EnvVar{{Name: EnvSchedulerHTTPRoutes, Value: own}}
	pod = SchedulerPod(c)
	assert.Equal(t, []corev1.EnvVar{{Name: EnvSchedulerHTTPRoutes, Value: own}}, pod.Spec.Containers[0].Env, "kept exactly")
	msg, disabled := SchedulerAPIDisabled(c)
	assert.True(t, disabled)
	assert.Contains(t, msg, "cannot be retired gracefully")

	c.Spec.Scheduler.Spec.Containers[0].Env = nil
	c.Spec.Scheduler.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{}}}
	assert.Empty(t, SchedulerPod(c).Spec.Containers[0].Env, "envFrom may set it: left alone")
}

// Issue 29, item 16: the default group carries spec.worker.metadata's labels
// and annotations, as the Python operator's (its test_simplecluster looks
// for worker-sublabel on the DaskWorkerGroup); the filtered prefixes stay out.
func TestDefaultWorkerGroupCarriesTheWorkerMetadata(t *testing.T) {
	c := legacyCluster(map[string]string{"team": "a"})
	c.Labels = map[string]string{"cluster-label": "x"}
	c.Spec.Worker.Metadata = daskv1.EmbeddedMetadata{
		Labels:      map[string]string{"worker-sublabel": "label-value"},
		Annotations: map[string]string{"worker-subannotation": "v", "kopf.zalando.org/x": "no"},
	}
	g := DefaultWorkerGroup(c)
	assert.Equal(t, "label-value", g.Labels["worker-sublabel"])
	assert.Equal(t, "x", g.Labels["cluster-label"])
	assert.Equal(t, c.Name, g.Labels[LabelClusterName])
	assert.Equal(t, "v", g.Annotations["worker-subannotation"])
	assert.Equal(t, "a", g.Annotations["team"])
	assert.NotContains(t, g.Annotations, "kopf.zalando.org/x")
}

// Issue 29, item 14: the Pods the operator makes carry no service links
// (a kubelet's variables for every Service of the namespace) unless the
// user's spec asks for them.
func TestPodsHaveNoServiceLinksUnlessAsked(t *testing.T) {
	c := legacyCluster(nil)
	g := DefaultWorkerGroup(c)
	j := &daskv1.DaskJob{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns"},
		Spec: daskv1.DaskJobSpec{Job: daskv1.JobRunnerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "job"}}}}}}
	for name, spec := range map[string]corev1.PodSpec{
		"scheduler": SchedulerPod(c).Spec,
		"worker":    WorkerPod(g, c, "w", "cluster.local").Spec,
		"runner":    RunnerPod(j, c, "cluster.local").Spec,
	} {
		require.NotNil(t, spec.EnableServiceLinks, name)
		assert.False(t, *spec.EnableServiceLinks, name)
	}
	on := true
	c.Spec.Worker.Spec.EnableServiceLinks = &on
	g = DefaultWorkerGroup(c)
	assert.True(t, *WorkerPod(g, c, "w", "cluster.local").Spec.EnableServiceLinks, "the user's choice stands")
	assert.Equal(t, SchedulerTemplateHash(c), SchedulerPod(c).Labels[LabelTemplateHash], "not part of the template hash")
}
