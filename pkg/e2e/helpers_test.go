package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func newNamespace(t *testing.T) string { return env.Namespace(t, "e2e-") }

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, timeout, cond)
}

// clusterSpec is a DaskCluster as users write it for Dask's latest image
// (Dask 2026 when ../shared/dask-current is there).
func clusterSpec(workers int32) daskv1.DaskClusterSpec {
	return clusterSpecOn(testenv.DaskRepository+":latest", workers)
}

// clusterSpecOn is clusterSpec for another image: the node agent runs each
// Dask image's commands with that image's Dask.
func clusterSpecOn(image string, workers int32) daskv1.DaskClusterSpec {
	return daskv1.DaskClusterSpec{
		Worker: daskv1.WorkerSpec{
			Replicas: &workers,
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "worker", Image: image,
				Args:  []string{"dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads", "1", "--dashboard-address", "8788"},
				Ports: []corev1.ContainerPort{{Name: "http-dashboard", ContainerPort: 8788}},
			}}},
		},
		Scheduler: daskv1.SchedulerSpec{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "scheduler", Image: image,
				Args: []string{"dask", "scheduler"},
				Ports: []corev1.ContainerPort{
					{Name: "tcp-comm", ContainerPort: 8786},
					{Name: "http-dashboard", ContainerPort: 8787},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http-dashboard"), Path: "/health"},
				}},
			}}},
			Service: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "tcp-comm", Port: 8786, TargetPort: intstr.FromString("tcp-comm")},
				{Name: "http-dashboard", Port: 8787, TargetPort: intstr.FromString("http-dashboard")},
			}},
		},
	}
}

func createCluster(t *testing.T, ns, name string, workers int32) *daskv1.DaskCluster {
	t.Helper()
	return createClusterOn(t, env.Latest(), ns, name, workers)
}

func createClusterOn(t *testing.T, d testenv.DaskImage, ns, name string, workers int32) *daskv1.DaskCluster {
	t.Helper()
	c, err := dask.KubernetesV1().DaskClusters(ns).Create(context.Background(), &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       clusterSpecOn(d.Image(), workers),
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return c
}

// schedulerIP waits for the cluster's scheduler Pod to be Ready and returns its address.
func schedulerIP(t *testing.T, ns, cluster string) string {
	t.Helper()
	var ip string
	eventually(t, 2*time.Minute, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), resources.SchedulerName(cluster), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ip = p.Status.PodIP
		return isReady(p) && ip != "", fmt.Sprintf("scheduler Pod %s: phase %s, ready %v", p.Name, p.Status.Phase, isReady(p))
	})
	return ip
}

// registeredWorkers lists the names of the workers the scheduler knows.
func registeredWorkers(ip string) ([]string, error) { return testenv.RegisteredWorkers(ip) }

// workerPods returns the names of a group's worker Pods that are not being deleted.
func workerPods(t *testing.T, ns, cluster, group string) []string {
	t.Helper()
	list, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(resources.WorkerGroupSelector(cluster, group)).String(),
	})
	require.NoError(t, err)
	var names []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	return names
}

// waitRegistered waits until the scheduler's workers are exactly the group's
// n worker Pods, by name.
func waitRegistered(t *testing.T, ns, cluster, group, schedIP string, n int, timeout time.Duration) []string {
	t.Helper()
	var pods []string
	eventually(t, timeout, func() (bool, string) {
		pods = workerPods(t, ns, cluster, group)
		registered, err := registeredWorkers(schedIP)
		if err != nil {
			return false, err.Error()
		}
		return len(pods) == n && strings.Join(pods, ",") == strings.Join(registered, ","),
			fmt.Sprintf("worker Pods %v, registered workers %v, want %d", pods, registered, n)
	})
	return pods
}

func isReady(p *corev1.Pod) bool { return testenv.PodReady(p) }

// client is a Dask client process on the host, talking to a scheduler at
// its Pod address, with the Python and Dask of the cluster's image (a
// client and its scheduler must be of one Dask).
type client = testenv.Python

func startClient(t *testing.T, script string) *client { return startClientOn(t, env.Latest(), script) }

func startClientOn(t *testing.T, d testenv.DaskImage, script string, share ...string) *client {
	return env.StartPythonIn(t, d, share, script)
}

// shareWithWorkers mounts a host folder at the same path in a cluster's
// workers (a hostPath volume), so that tasks can leave traces a test reads.
func shareWithWorkers(spec *daskv1.DaskClusterSpec, dir string) {
	w := &spec.Worker.Spec
	w.Volumes = append(w.Volumes, corev1.Volume{Name: "shared", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}})
	w.Containers[0].VolumeMounts = append(w.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "shared", MountPath: dir})
}

// eachDask runs a test on every Dask release the node has (Debian 12's
// 2022.12, Debian 13's 2024.12 and 2026.7), oldest first.
func eachDask(t *testing.T, test func(t *testing.T, d testenv.DaskImage)) {
	for _, d := range env.Images {
		t.Run("dask-"+d.Version, func(t *testing.T) { test(t, d) })
	}
}

// portForward runs kubectl port-forward to a target (pod/NAME, svc/NAME) and
// returns the local port, once kubectl listens on it.
func portForward(t *testing.T, kubeconfig, ns, target string, port int) string {
	t.Helper()
	bins, err := testenv.FindBinaries()
	require.NoError(t, err)
	pf := exec.Command(bins.Path("kubectl"), "--kubeconfig", kubeconfig, "-n", ns, "port-forward", target, fmt.Sprintf(":%d", port))
	out, err := pf.StdoutPipe()
	require.NoError(t, err)
	pf.Stderr = pf.Stdout
	require.NoError(t, pf.Start())
	t.Cleanup(func() { _ = pf.Process.Kill(); _ = pf.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n') // Forwarding from 127.0.0.1:PORT -> port
	require.NoError(t, err, "kubectl port-forward said: %s", line)
	require.True(t, strings.HasPrefix(line, "Forwarding from 127.0.0.1:"), "kubectl port-forward said: %s", line)
	return strings.TrimPrefix(strings.Fields(line)[2], "127.0.0.1:")
}
