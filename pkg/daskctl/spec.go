package daskctl

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// DefaultImage is the image make_cluster_spec uses.
const DefaultImage = "ghcr.io/dask/dask:latest"

// ClusterOptions are make_cluster_spec's parameters.
type ClusterOptions struct {
	Name      string
	Namespace string
	Image     string
	// Workers is the default group's replicas (the client's n_workers; 3 when unset).
	Workers *int32
	// Resources go on the scheduler and every worker container.
	Resources *corev1.ResourceRequirements
	// Env goes on the scheduler and every worker container, in order.
	Env []corev1.EnvVar
	// WorkerCommand is split on spaces, as the client does; default
	// "dask worker" (the client's dask-worker is gone from Dask 2026.6 on).
	WorkerCommand string
	// SchedulerServiceType is the scheduler Service's type; default ClusterIP.
	SchedulerServiceType corev1.ServiceType
	// IdleTimeout deletes the cluster after this many idle seconds; 0 never.
	IdleTimeout int64
	// Jupyter starts Jupyter on the scheduler.
	Jupyter bool
}

// ClusterSpec builds the DaskCluster the Python client's make_cluster_spec
// builds for the same parameters, so that a cluster made either way looks
// the same, but for the commands: `dask scheduler` and `dask worker`, which
// every Dask since 2022.10 has, where the client writes dask-scheduler and
// dask-worker, which Dask 2026.6 removed.
func ClusterSpec(o ClusterOptions) *daskv1.DaskCluster {
	image := o.Image
	if image == "" {
		image = DefaultImage
	}
	workers := int32(3)
	if o.Workers != nil {
		workers = *o.Workers
	}
	command := o.WorkerCommand
	if command == "" {
		command = "dask worker"
	}
	svcType := o.SchedulerServiceType
	if svcType == "" {
		svcType = corev1.ServiceTypeClusterIP
	}
	var res corev1.ResourceRequirements
	if o.Resources != nil {
		res = *o.Resources.DeepCopy()
	}
	env := append([]corev1.EnvVar(nil), o.Env...)
	health := corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http-dashboard"), Path: "/health"}}
	schedArgs := []string{"dask", "scheduler", "--host", "0.0.0.0"}
	if o.Jupyter {
		schedArgs = append(schedArgs, "--jupyter")
	}
	return &daskv1.DaskCluster{
		TypeMeta:   metav1.TypeMeta{APIVersion: daskv1.SchemeGroupVersion.String(), Kind: "DaskCluster"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace},
		Spec: daskv1.DaskClusterSpec{
			IdleTimeout: o.IdleTimeout,
			Worker: daskv1.WorkerSpec{
				Replicas: &workers,
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:      "worker",
					Image:     image,
					Args:      append(strings.Split(command, " "), "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address", "8788"),
					Env:       env,
					Resources: res,
					Ports:     []corev1.ContainerPort{{Name: "http-dashboard", ContainerPort: 8788, Protocol: corev1.ProtocolTCP}},
				}}},
			},
			Scheduler: daskv1.SchedulerSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:      "scheduler",
					Image:     image,
					Args:      schedArgs,
					Env:       append([]corev1.EnvVar(nil), env...),
					Resources: *res.DeepCopy(),
					Ports: []corev1.ContainerPort{
						{Name: "tcp-comm", ContainerPort: 8786, Protocol: corev1.ProtocolTCP},
						{Name: "http-dashboard", ContainerPort: 8787, Protocol: corev1.ProtocolTCP},
					},
					ReadinessProbe: &corev1.Probe{ProbeHandler: health, InitialDelaySeconds: 0, PeriodSeconds: 1, TimeoutSeconds: 300},
					LivenessProbe:  &corev1.Probe{ProbeHandler: health, InitialDelaySeconds: 15, PeriodSeconds: 20},
				}}},
				Service: corev1.ServiceSpec{
					Type:     svcType,
					Selector: map[string]string{"dask.org/cluster-name": o.Name, "dask.org/component": "scheduler"},
					Ports: []corev1.ServicePort{
						{Name: "tcp-comm", Protocol: corev1.ProtocolTCP, Port: 8786, TargetPort: intstr.FromString("tcp-comm")},
						{Name: "http-dashboard", Protocol: corev1.ProtocolTCP, Port: 8787, TargetPort: intstr.FromString("http-dashboard")},
					},
				},
			},
		},
	}
}

// ParseEnv turns K=V pairs into environment variables, in order.
func ParseEnv(pairs []string) ([]corev1.EnvVar, error) {
	var out []corev1.EnvVar
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE", p)
		}
		out = append(out, corev1.EnvVar{Name: k, Value: v})
	}
	return out, nil
}

// JobOptions describe a DaskJob submitted from the command line.
type JobOptions struct {
	Name      string
	Namespace string
	Image     string
	// Command is the runner's command (python script.py ...).
	Command []string
	// Workers is the job cluster's worker count (default 3).
	Workers *int32
	Env     []corev1.EnvVar
	// ConfigMap, when set, is mounted at FileMount in the runner (the
	// --file scripts).
	ConfigMap string
	// BackoffLimit and ActiveDeadlineSeconds as on the DaskJob.
	BackoffLimit          *int32
	ActiveDeadlineSeconds *int64
}

// FileMount is where the files given with --file are in the runner.
const FileMount = "/dask-job"

// JobSpec builds a DaskJob: a runner Pod running Command with the cluster's
// scheduler address in DASK_SCHEDULER_ADDRESS (the operator sets it), and a
// cluster as make_cluster_spec makes it.
func JobSpec(o JobOptions) *daskv1.DaskJob {
	cluster := ClusterSpec(ClusterOptions{Name: o.Name, Image: o.Image, Workers: o.Workers, Env: o.Env})
	// The job's cluster is named after the job; the operator selects its
	// scheduler itself.
	cluster.Spec.Scheduler.Service.Selector = nil
	runner := corev1.Container{
		Name:  "job",
		Image: cluster.Spec.Worker.Spec.Containers[0].Image,
		Args:  o.Command,
		Env:   append([]corev1.EnvVar(nil), o.Env...),
	}
	spec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{runner}}
	if o.ConfigMap != "" {
		spec.Volumes = []corev1.Volume{{Name: "files", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: o.ConfigMap}}}}}
		spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "files", MountPath: FileMount}}
		spec.Containers[0].WorkingDir = FileMount
	}
	return &daskv1.DaskJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: daskv1.SchemeGroupVersion.String(), Kind: "DaskJob"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace},
		Spec: daskv1.DaskJobSpec{
			Job:                   daskv1.JobRunnerSpec{Spec: spec},
			Cluster:               daskv1.JobClusterSpec{Spec: cluster.Spec},
			BackoffLimit:          o.BackoffLimit,
			ActiveDeadlineSeconds: o.ActiveDeadlineSeconds,
		},
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
