package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// pyClientWorkflow is what a user of the Python KubeCluster client does,
// with the time each step may take (the limits a user would accept); it
// exits non-zero when a step fails or is too slow.
const pyClientWorkflow = `
import os, subprocess, sys, time
from dask_kubernetes.operator import KubeCluster
from dask.distributed import Client

ns = os.environ["NS"]
last = time.monotonic()

def step(name, limit):
    global last
    took, last = time.monotonic() - last, time.monotonic()
    print(f"\nSTEP {name} {took:.1f}s (limit {limit}s)", flush=True)
    if took > limit:
        sys.exit(f"{name} took {took:.1f}s, more than {limit}s")

def wait_workers(client, n, limit):
    end = time.monotonic() + limit
    while len(client.scheduler_info()["workers"]) != n:
        if time.monotonic() > end:
            sys.exit(f"{len(client.scheduler_info()['workers'])} workers, want {n}")
        time.sleep(0.5)

port_forward = os.environ.get("PORT_FORWARD") == "1"
cluster = KubeCluster(name="pyc", namespace=ns, n_workers=2, port_forward_cluster_ip=port_forward, resource_timeout=120)
print("\nADDRESS", cluster.scheduler_address, flush=True)
step("KubeCluster", 120)
client = Client(cluster)
assert client.submit(sum, range(10)).result(timeout=60) == 45
versions = client.get_versions()
assert versions["scheduler"]["packages"]["distributed"] == os.environ["DASK_VERSION"], versions["scheduler"]
assert versions["client"]["packages"]["distributed"] == os.environ["DASK_VERSION"], versions["client"]
wait_workers(client, 2, 60)
step("compute", 60)

cluster.scale(3)
wait_workers(client, 3, 90)
step("scale(3)", 90)
cluster.scale(1)
wait_workers(client, 1, 90)
step("scale(1)", 90)

cluster.add_worker_group("big", n_workers=1)
wait_workers(client, 2, 90)
big = [a for a, w in client.scheduler_info()["workers"].items() if str(w["name"]).startswith("pyc-big-")]
assert big, client.scheduler_info()["workers"]
assert client.submit(lambda x: x + 1, 1, workers=big, pure=False).result(timeout=60) == 2
step("add_worker_group", 120)
cluster.delete_worker_group("big")
wait_workers(client, 1, 90)
step("delete_worker_group", 90)

logs = cluster.get_logs()
assert any(k.startswith("pyc-scheduler") for k in logs), list(logs)
assert any("Scheduler at" in v for v in logs.values()), logs
step("get_logs", 30)

other = subprocess.run([sys.executable, "-c",
    "from dask_kubernetes.operator import KubeCluster; from dask.distributed import Client; "
    f"c = KubeCluster.from_name('pyc', namespace='{ns}'); print('FROM_NAME', Client(c).submit(sum, [1, 2]).result(timeout=60))"],
    capture_output=True, text=True, timeout=120)
assert "FROM_NAME 3" in other.stdout, other.stdout + other.stderr
step("from_name", 120)

cluster.adapt(minimum=1, maximum=3)
futures = client.map(lambda x: time.sleep(3) or x, range(60), pure=False)
wait_workers(client, 3, 120)
step("adapt grows", 120)
client.gather(futures)
del futures
wait_workers(client, 1, 120)
step("adapt shrinks", 120)

client.close()
cluster.close()
step("close", 60)
print("DONE", flush=True)
`

// TestRealKubeClusterClient drives the operator with the Python
// operator's own KubeCluster client (dask-kubernetes with kr8s, unchanged,
// from ../shared/incumbent), against real Dask: create, compute, scale,
// worker groups, logs, from_name in a second process, adapt, close; by both
// of the client's ways to the scheduler.
func TestRealKubeClusterClient(t *testing.T) {
	incumbent := testenv.IncumbentDir(t)
	// By the scheduler Service's name <svc>.<ns>, as where that resolves
	// (in the cluster, a notebook's Pod): the client runs in a mount
	// namespace of its own whose /etc/hosts maps the name to the scheduler
	// Pod (the test node has no kube-proxy for Service addresses; the host's
	// /etc/hosts is not touched).
	t.Run("ServiceName", func(t *testing.T) {
		addr := runPyClient(t, incumbent, false)
		assert.Regexp(t, `^tcp://pyc-scheduler\.[a-z0-9-]+:8786$`, addr)
	})
	// Through kr8s' port-forward (WebSockets, through the API server to the
	// node), as on a laptop.
	t.Run("PortForward", func(t *testing.T) {
		addr := runPyClient(t, incumbent, true)
		assert.Regexp(t, `^tcp://localhost:\d+$`, addr)
	})
}

// runPyClient runs pyClientWorkflow and returns the scheduler address the
// client used.
func runPyClient(t *testing.T, incumbent string, portForward bool) string {
	ns := newNamespace(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "workflow.py")
	require.NoError(t, os.WriteFile(script, []byte(pyClientWorkflow), 0o644))

	log := filepath.Join(dir, "client.log")
	out, err := os.Create(log)
	require.NoError(t, err)
	defer out.Close()
	// The client runs beside the Dask of the cluster's image (make_cluster_spec's
	// default, ghcr.io/dask/dask:latest: Dask 2026, which has no dask-worker
	// or dask-scheduler), on Debian 13's Python, as its users run it.
	python := env.EnterArgs(env.Current(t), []string{dir, incumbent, env.Dir}, "/usr/bin/python3", script)
	var cmd *exec.Cmd
	if portForward {
		cmd = exec.Command("/bin/bash", append([]string{"-c", `. "$1/env.sh" && shift && exec "$@"`, "bash", incumbent}, python...)...)
	} else {
		hosts := startHostsFile(t, dir, ns)
		cmd = exec.Command("/bin/bash", append([]string{"-c", `. "$1/env.sh" && exec unshare --mount --propagation private /bin/sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$2" "${@:3}"`,
			"bash", incumbent, hosts}, python...)...)
	}
	pf := map[bool]string{true: "1", false: "0"}[portForward]
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "NS="+ns, "PORT_FORWARD="+pf, "PYTHONUNBUFFERED=1", "DASK_VERSION="+env.Current(t).Version,
		"PYTHONPYCACHEPREFIX=/tmp/pycache") // the client's root has a /tmp of its own
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	select {
	case err = <-done:
	case <-time.After(15 * time.Minute):
		err = fmt.Errorf("the client did not finish within 15 minutes")
	}
	data, _ := os.ReadFile(log)
	t.Logf("client steps:\n%s", strings.Join(linesWith(string(data), "STEP "), "\n"))
	require.NoError(t, err, "the KubeCluster client failed; its output:\n%s", data)
	assert.Contains(t, string(data), "DONE")
	_, err = dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), "pyc", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "close() deleted the cluster")
	addr := linesWith(string(data), "ADDRESS ")
	require.Len(t, addr, 1)
	return strings.TrimPrefix(addr[0], "ADDRESS ")
}

// The client's `dask kubernetes gen cluster` output, applied with kubectl,
// gives a Running cluster whose workers join.
func TestRealGenClusterOutputRuns(t *testing.T) {
	incumbent := testenv.IncumbentDir(t)
	ns := newNamespace(t)
	cmd := exec.Command("/bin/bash", "-c", `. "$1/env.sh" && exec /usr/bin/python3 -c 'import sys; from dask_kubernetes.cli.cli import main; sys.argv = ["dask", "gen", "cluster", "--name", "gen"]; main()'`,
		"bash", incumbent)
	spec, err := cmd.Output()
	require.NoError(t, err, "dask kubernetes gen cluster")
	path := filepath.Join(t.TempDir(), "gen.yaml")
	require.NoError(t, os.WriteFile(path, spec, 0o644))
	env.Kubectl(t, "", "apply", "-n", ns, "-f", path)
	eventually(t, 2*time.Minute, func() (bool, string) {
		c, err := dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), "gen", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return c.Status.Phase == daskv1.DaskClusterRunning, string(c.Status.Phase)
	})
	ip := schedulerIP(t, ns, "gen")
	waitRegistered(t, ns, "gen", "gen-default", ip, 3, 2*time.Minute) // the CLI's default: 3 workers
}

// startHostsFile writes a hosts file that maps the Service names of the
// namespace's schedulers to their Pod addresses, and keeps it current
// (written in place, so that a bind mount of it sees every change).
func startHostsFile(t *testing.T, dir, ns string) string {
	t.Helper()
	base, err := os.ReadFile("/etc/hosts")
	require.NoError(t, err)
	path := filepath.Join(dir, "hosts")
	require.NoError(t, os.WriteFile(path, base, 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		written := ""
		for ctx.Err() == nil {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "dask.org/component=scheduler"})
			if err == nil {
				var lines []string
				for _, p := range pods.Items {
					if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
						continue
					}
					svc := p.Labels["dask.org/cluster-name"] + "-scheduler"
					lines = append(lines, fmt.Sprintf("%s %s.%s %s.%s.svc %s.%s.svc.cluster.local", p.Status.PodIP, svc, ns, svc, ns, svc, ns))
				}
				sort.Strings(lines)
				if text := strings.Join(lines, "\n"); text != written {
					f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
					if err == nil {
						_, _ = f.Write(append(append([]byte{}, base...), []byte("\n"+text+"\n")...))
						_ = f.Close()
						written = text
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return path
}

// linesWith returns the lines of out that start with prefix.
func linesWith(out, prefix string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			lines = append(lines, l)
		}
	}
	return lines
}

// inPodClient is what a notebook in the cluster runs: the KubeCluster
// client with the Pod's service account (no kubeconfig), reaching the
// scheduler by its Service's name.
const inPodClient = `
import kr8s
from dask_kubernetes.operator import KubeCluster
from dask.distributed import Client
print("SERVER", kr8s.api().auth.server, flush=True)
# kr8s 0.20 never reads the namespace file itself: notebooks pass it.
with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
    namespace = f.read()
cluster = KubeCluster(name="nb", namespace=namespace, n_workers=1, resource_timeout=120)
print("ADDRESS", cluster.scheduler_address, flush=True)
client = Client(cluster)
print("RESULT", client.submit(sum, range(10)).result(timeout=60), flush=True)
client.close()
cluster.close()
print("CLOSED", flush=True)
`

// Issue 14: the KubeCluster client inside a Pod, as notebook users run it:
// in-cluster credentials from the Pod's service account, its namespace from
// the account's files, the scheduler reached as <svc>.<ns> through the cluster's names,
// without a port-forward; it computes and close() removes the cluster.
func TestRealKubeClusterClientInAPod(t *testing.T) {
	incumbent := testenv.IncumbentDir(t)
	ns := newNamespace(t)
	ctx := context.Background()
	eventually(t, time.Minute, func() (bool, string) {
		_, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint("service account default: ", err)
	})
	// The notebook's account may manage Dask clusters in its namespace.
	_, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "notebook"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "notebook"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "notebook", Image: "ghcr.io/dask/dask-notebook:latest",
				Command: []string{"/bin/bash", "-c", `. "$INCUMBENT/env.sh" && exec /usr/bin/python3 -c "$SCRIPT"`},
				Env:     []corev1.EnvVar{{Name: "INCUMBENT", Value: incumbent}, {Name: "SCRIPT", Value: inPodClient}},
				// The client's code, installed in the notebook's image by users.
				VolumeMounts: []corev1.VolumeMount{{Name: "incumbent", MountPath: incumbent, ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "incumbent", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: incumbent}}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var phase corev1.PodPhase
	eventually(t, 5*time.Minute, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "notebook", metav1.GetOptions{})
		require.NoError(t, err)
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, string(phase)
	})
	logs, err := kube.CoreV1().Pods(ns).GetLogs("notebook", &corev1.PodLogOptions{}).DoRaw(ctx)
	require.NoError(t, err)
	out := string(logs)
	require.Equal(t, corev1.PodSucceeded, phase, "the client in the Pod failed:\n%s", out)
	// The client's progress panel ends without a newline: look anywhere.
	assert.Contains(t, out, "SERVER https://kubernetes.default.svc:443\n", "in-cluster credentials, not a kubeconfig")
	assert.Contains(t, out, "ADDRESS tcp://nb-scheduler."+ns+":8786\n", "by the Service's name, no port-forward")
	assert.Contains(t, out, "RESULT 45\n")
	assert.Contains(t, out, "CLOSED")
	if t.Failed() {
		t.Logf("the client's output:\n%s", out)
	}
	_, err = dask.KubernetesV1().DaskClusters(ns).Get(ctx, "nb", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "close() deleted the cluster")
}
