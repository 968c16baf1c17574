package testobjects

import (
	"fmt"
	"time"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func Int32p(v int32) *int32 { return &v }

func Cluster(name string) *daskv1.DaskCluster {
	return &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1},
		Spec: daskv1.DaskClusterSpec{
			Worker:    daskv1.WorkerSpec{Replicas: Int32p(1), Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}}},
			Scheduler: daskv1.SchedulerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "scheduler"}}}},
		},
	}
}

func Group(name, clusterName string, replicas int32) *daskv1.DaskWorkerGroup {
	return &daskv1.DaskWorkerGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1},
		Spec: daskv1.DaskWorkerGroupSpec{
			Cluster: clusterName,
			Worker:  daskv1.WorkerSpec{Replicas: Int32p(replicas), Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}}},
		},
	}
}

type podState int

const (
	Unscheduled podState = iota
	Pending
	RunningNotReady
	Ready
)

func WorkerPod(g *daskv1.DaskWorkerGroup, name string, state podState, age time.Duration) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: g.Namespace, UID: types.UID("uid-" + name),
			Labels:            resources.WorkerGroupSelector(g.Spec.Cluster, g.Name),
			OwnerReferences:   []metav1.OwnerReference{resources.ControllerRefToWorkerGroup(g)},
			CreationTimestamp: metav1.NewTime(time.Unix(1_700_000_000, 0).Add(-age)),
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if state >= Pending {
		p.Spec.NodeName = "node"
	}
	if state >= RunningNotReady {
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = "10.0.0." + fmt.Sprint(len(name))
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	}
	if state == Ready {
		p.Status.Conditions[0].Status = corev1.ConditionTrue
	}
	return p
}

func DaskJob(name string, policy corev1.RestartPolicy) *daskv1.DaskJob {
	return &daskv1.DaskJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1},
		Spec: daskv1.DaskJobSpec{
			Job:     daskv1.JobRunnerSpec{Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{Name: "job"}}}},
			Cluster: daskv1.JobClusterSpec{Spec: Cluster("x").Spec},
		},
	}
}

// RunnerIn returns the job's runner Pod in a phase, with restarts.
func RunnerIn(j *daskv1.DaskJob, phase corev1.PodPhase, restarts int32) *corev1.Pod {
	p := resources.RunnerPod(j, resources.JobCluster(j), "cluster.local")
	p.UID = "runner-uid"
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "job", RestartCount: restarts}}
	if phase == corev1.PodFailed {
		p.Status.ContainerStatuses[0].State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}
	}
	return p
}

// JobCluster is the job's DaskCluster as the job controller created it.
func JobCluster(j *daskv1.DaskJob) *daskv1.DaskCluster {
	c := resources.JobCluster(j)
	c.UID = "cluster-uid"
	return c
}

func Ptr[T any](v T) *T { return &v }

// What the Python operator makes of a cluster: a Deployment, its ReplicaSet
// and its Pod for the scheduler and for each worker, all labelled as ours.
type KopfObjects struct {
	Deployments []*appsv1.Deployment
	ReplicaSets []*appsv1.ReplicaSet
	Pods        []*corev1.Pod
}

func KopfCluster(c *daskv1.DaskCluster, g *daskv1.DaskWorkerGroup, workers ...string) KopfObjects {
	var out KopfObjects
	add := func(name string, labels map[string]string, owner metav1.OwnerReference) {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace, UID: types.UID("uid-d-" + name),
			Labels: labels, OwnerReferences: []metav1.OwnerReference{owner}}}
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-5d4f", Namespace: c.Namespace, UID: types.UID("uid-rs-" + name),
			Labels: labels, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}}}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-5d4f-x7k2p", Namespace: c.Namespace, UID: types.UID("uid-p-" + name),
			Labels: labels, ResourceVersion: "1", OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.9",
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
		out.Deployments = append(out.Deployments, d)
		out.ReplicaSets = append(out.ReplicaSets, rs)
		out.Pods = append(out.Pods, p)
	}
	add(c.Name+"-scheduler", map[string]string{resources.LabelClusterName: c.Name, resources.LabelComponent: resources.ComponentScheduler},
		*metav1.NewControllerRef(c, daskv1.SchemeGroupVersion.WithKind("DaskCluster")))
	for _, w := range workers {
		add(g.Name+"-worker-"+w, resources.WorkerGroupSelector(c.Name, g.Name),
			*metav1.NewControllerRef(g, daskv1.SchemeGroupVersion.WithKind("DaskWorkerGroup")))
	}
	return out
}
