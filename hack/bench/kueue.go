package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	"github.com/dask-operator/dask-operator/pkg/kueue"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// benchKueue times, through a real Kueue on a control plane of its own,
// how long a queued DaskJob takes from its Workload's admission to Running
// (its runner Pod running, its cluster made), against a Kubernetes Job
// through the same queue (admission to its Pod running): the baseline is
// Kueue's own integration of the most common kind. Each is created alone,
// in turn, and deleted once timed; the medians are reported.
func benchKueue(ctx context.Context, rep *report, bin string, shipped []string) error {
	fmt.Println("kueue: starting a control plane with Kueue and the Job controller...")
	env, err := testenv.Start(testenv.Options{Nodes: true, Jobs: true})
	if err != nil {
		return err
	}
	defer env.Stop()
	if _, err := env.StartKueue(testenv.KueueOptions{}); err != nil {
		return err
	}
	op, err := startOperatorWith(bin, env.Kubeconfig, "http://127.0.0.1:1", shipped)
	if err != nil {
		return err
	}
	defer op.stop()
	kube := kubernetes.NewForConfigOrDie(env.Config)
	dask := versioned.NewForConfigOrDie(env.Config)
	dyn := dynamic.NewForConfigOrDie(env.Config)
	ns := mustNamespace(ctx, kube, "bench-kueue")
	for _, doc := range []struct{ resource, ns, yaml string }{
		{"resourceflavors", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: bench}}`},
		{"clusterqueues", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: ClusterQueue, metadata: {name: bench}, spec: {namespaceSelector: {},
  resourceGroups: [{coveredResources: [cpu], flavors: [{name: bench, resources: [{name: cpu, nominalQuota: 100}]}]}]}}`},
		{"localqueues", ns, `{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: q}, spec: {clusterQueue: bench}}`},
	} {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc.yaml), &obj.Object); err != nil {
			return err
		}
		if _, err := dyn.Resource(kueue.GroupVersion.WithResource(doc.resource)).Namespace(doc.ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("%s: %w", doc.resource, err)
		}
	}
	var daskTimes, jobTimes []float64
	for i := 0; i < *kueueSamples; i++ {
		d, err := timeAdmissionToRunning(ctx, dyn, "DaskJob", fmt.Sprintf("dj-%d", i), ns, func(name string) error {
			_, err := dask.KubernetesV1().DaskJobs(ns).Create(ctx, benchDaskJob(ns, name), metav1.CreateOptions{})
			return err
		}, func(name string) (bool, error) {
			j, err := dask.KubernetesV1().DaskJobs(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && j.Status.JobStatus == daskv1.JobRunning, err
		}, func(name string) error {
			return dask.KubernetesV1().DaskJobs(ns).Delete(ctx, name, metav1.DeleteOptions{})
		})
		if err != nil {
			return err
		}
		daskTimes = append(daskTimes, d)
		j, err := timeAdmissionToRunning(ctx, dyn, "Job", fmt.Sprintf("job-%d", i), ns, func(name string) error {
			_, err := kube.BatchV1().Jobs(ns).Create(ctx, benchJob(ns, name), metav1.CreateOptions{})
			return err
		}, func(name string) (bool, error) {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name})
			if err != nil {
				return false, err
			}
			// kwok completes a Job's Pods within a second: Succeeded has
			// been Running.
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded {
					return true, nil
				}
			}
			return false, nil
		}, func(name string) error {
			bg := metav1.DeletePropagationBackground
			return kube.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
		})
		if err != nil {
			return err
		}
		jobTimes = append(jobTimes, j)
	}
	rep.add(fmt.Sprintf("Kueue: queued DaskJob, admission to Running (median of %d)", len(daskTimes)), median(daskTimes), median(jobTimes), "s",
		"baseline: a Kubernetes Job through the same queue, admission to its Pod Running")
	return nil
}

// timeAdmissionToRunning creates an object, waits until the Workload it
// gets is admitted and then until the object runs, both as this client
// sees them (polled every 10 ms), and deletes it.
func timeAdmissionToRunning(ctx context.Context, dyn dynamic.Interface, kind, name, ns string,
	create func(string) error, running func(string) (bool, error), del func(string) error) (float64, error) {
	if err := create(name); err != nil {
		return 0, fmt.Errorf("create %s %s: %w", kind, name, err)
	}
	defer func() { _ = del(name) }()
	deadline := time.Now().Add(2 * time.Minute)
	var admitted time.Time
	for time.Now().Before(deadline) {
		if admitted.IsZero() {
			list, err := dyn.Resource(kueue.WorkloadResource).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, err
			}
			for i := range list.Items {
				ref := metav1.GetControllerOf(&list.Items[i])
				if ref == nil || ref.Kind != kind || ref.Name != name {
					continue
				}
				if w, err := kueue.FromUnstructured(&list.Items[i]); err == nil && w.IsAdmitted() {
					admitted = time.Now()
				}
			}
		}
		if !admitted.IsZero() {
			ok, err := running(name)
			if err != nil {
				return 0, err
			}
			if ok {
				return time.Since(admitted).Seconds(), nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s %s: not admitted and Running within 2 minutes", kind, name)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func benchRequests() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}
}

func benchDaskJob(ns, name string) *daskv1.DaskJob {
	one := int32(1)
	c := func(n string, args ...string) corev1.Container {
		return corev1.Container{Name: n, Image: "ghcr.io/dask/dask:latest", Args: args, Resources: benchRequests()}
	}
	return &daskv1.DaskJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{kueue.LabelQueueName: "q"}},
		Spec: daskv1.DaskJobSpec{
			Job: daskv1.JobRunnerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c("job", "python", "-c", "print(1)")}}},
			Cluster: daskv1.JobClusterSpec{Spec: daskv1.DaskClusterSpec{
				Scheduler: daskv1.SchedulerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c("scheduler", "dask", "scheduler")}}},
				Worker:    daskv1.WorkerSpec{Replicas: &one, Spec: corev1.PodSpec{Containers: []corev1.Container{c("worker", "dask", "worker")}}},
			}},
		},
	}
}

func benchJob(ns, name string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{kueue.LabelQueueName: "q"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "job", Image: "ghcr.io/dask/dask:latest", Args: []string{"python", "-c", "print(1)"}, Resources: benchRequests()}},
		}}},
	}
}
