package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// The node agent runs Pods as the kubelet would (exit codes, restartPolicy,
// readiness), removes a deleted Pod's namespace and processes, and leaves
// no namespace, link or process behind once the environment stops, even
// when the agent itself was killed.
func TestNodeAgentLifecycleAndCleanup(t *testing.T) {
	own, err := testenv.Start(testenv.Options{RealPods: true, SkipCRDs: true})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			own.Stop()
		}
	})
	client := kubernetes.NewForConfigOrDie(own.Config)
	ctx := context.Background()
	pod := func(name string, policy corev1.RestartPolicy, script string, probe *corev1.Probe) {
		_, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{
				Name: "c", Image: own.Images[0].Image(), Command: []string{"sh", "-c", script}, ReadinessProbe: probe,
				Env: []corev1.EnvVar{{Name: "ME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	get := func(name string) *corev1.Pod {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return p
	}
	// A child in the background survives its parent unless someone kills it.
	pod("sleeper", corev1.RestartPolicyAlways, "sleep 1000 & sleep 1000", nil)
	pod("doomed", corev1.RestartPolicyAlways, "sleep 1000 & sleep 1000", nil)
	pod("exits-3", corev1.RestartPolicyNever, `test "$ME" = exits-3 && exit 3`, nil)
	pod("retried", corev1.RestartPolicyOnFailure, "exit 1", nil)
	pod("done", corev1.RestartPolicyOnFailure, "true", nil)
	pod("unready", corev1.RestartPolicyAlways, "sleep 1000", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9)},
	}})
	pod("talker", corev1.RestartPolicyNever, "echo one; echo two; sleep 3; echo three", nil)

	// kubectl logs: the API server reaches the agent at the node's kubelet
	// port; a followed log ends with the process.
	eventually(t, time.Minute, func() (bool, string) {
		p := get("talker")
		return p.Status.Phase == corev1.PodRunning, "talker: " + string(p.Status.Phase)
	})
	stream, err := client.CoreV1().Pods("default").GetLogs("talker", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	require.NoError(t, err)
	followed, err := io.ReadAll(stream)
	stream.Close()
	require.NoError(t, err)
	assert.Equal(t, "one\ntwo\nthree\n", string(followed))
	tail, err := client.CoreV1().Pods("default").GetLogs("talker", &corev1.PodLogOptions{TailLines: new(int64(1))}).DoRaw(ctx)
	require.NoError(t, err)
	assert.Equal(t, "three\n", string(tail))
	_, err = client.CoreV1().Pods("default").GetLogs("talker", &corev1.PodLogOptions{Container: "other"}).DoRaw(ctx)
	assert.Error(t, err, "a container the Pod does not have")

	// kubectl port-forward reaches a Pod's port through the API server.
	pod("server", corev1.RestartPolicyAlways, "exec python3 -m http.server 8000", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8000)},
	}})
	eventually(t, time.Minute, func() (bool, string) {
		p := get("server")
		return isReady(p), "server: " + string(p.Status.Phase)
	})
	local := portForward(t, own.Kubeconfig, "default", "pod/server", 8000)
	for range 2 { // two connections over one forward
		resp, err := http.Get("http://127.0.0.1:" + local + "/")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, string(body), "Directory listing", "the Pod's HTTP server answered")
	}

	eventually(t, time.Minute, func() (bool, string) {
		s, d := get("sleeper"), get("doomed")
		return isReady(s) && isReady(d) && s.Status.PodIP != d.Status.PodIP && strings.HasPrefix(s.Status.PodIP, "10.250."),
			fmt.Sprintf("sleeper %s %s, doomed %s %s", s.Status.Phase, s.Status.PodIP, d.Status.Phase, d.Status.PodIP)
	})
	eventually(t, time.Minute, func() (bool, string) {
		p := get("exits-3")
		st := p.Status.ContainerStatuses
		return p.Status.Phase == corev1.PodFailed && len(st) == 1 && st[0].State.Terminated != nil && st[0].State.Terminated.ExitCode == 3,
			fmt.Sprintf("exits-3: %s %+v", p.Status.Phase, st)
	})
	eventually(t, time.Minute, func() (bool, string) {
		p := get("retried")
		st := p.Status.ContainerStatuses
		return p.Status.Phase == corev1.PodRunning && len(st) == 1 && st[0].RestartCount >= 2,
			fmt.Sprintf("retried: %s %+v", p.Status.Phase, st)
	})
	eventually(t, time.Minute, func() (bool, string) {
		p := get("done")
		return p.Status.Phase == corev1.PodSucceeded, fmt.Sprintf("done: %s", p.Status.Phase)
	})
	u := get("unready")
	assert.Equal(t, corev1.PodRunning, u.Status.Phase)
	assert.False(t, isReady(u), "nothing listens on the probe's port")

	// Deleting a Pod stops all its processes and removes its namespace.
	doomedIP := get("doomed").Status.PodIP
	doomedNetns := own.Bridge + "-" + doomedIP[strings.LastIndex(doomedIP, ".")+1:]
	require.Contains(t, netnsList(t), doomedNetns)
	require.NotEmpty(t, podProcesses(t, own.Dir, "doomed"))
	require.NoError(t, client.CoreV1().Pods("default").Delete(ctx, "doomed", metav1.DeleteOptions{}))
	eventually(t, time.Minute, func() (bool, string) {
		_, err := client.CoreV1().Pods("default").Get(ctx, "doomed", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && !contains(netnsList(t), doomedNetns) && len(podProcesses(t, own.Dir, "doomed")) == 0,
			fmt.Sprintf("pod: %v, namespaces %v, processes %v", err, netnsList(t), podProcesses(t, own.Dir, "doomed"))
	})
	require.NotEmpty(t, podProcesses(t, own.Dir, "sleeper"))

	// The agent dies without cleaning up; stopping the environment does.
	require.NoError(t, own.Kill("nodeagent"))
	bridge, dir := own.Bridge, own.Dir
	own.Stop()
	stopped = true
	for _, ns := range netnsList(t) {
		assert.False(t, strings.HasPrefix(ns, bridge+"-"), "namespace %s left behind", ns)
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	require.NoError(t, err)
	assert.NotContains(t, string(links), " "+bridge, "links of %s left behind:\n%s", bridge, links)
	etc, _ := filepath.Glob("/etc/netns/" + bridge + "-*")
	assert.Empty(t, etc, "/etc/netns folders left behind")
	assert.Empty(t, podProcesses(t, dir, ""), "Pod processes left behind")
}

func netnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	require.NoError(t, err)
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// podProcesses lists the processes working in a Pod's folder under the
// environment's node agent state (any Pod when pod is "").
func podProcesses(t *testing.T, envDir, pod string) []string {
	t.Helper()
	prefix := filepath.Join(envDir, "nodeagent", "pods", "default_"+pod)
	procs, err := filepath.Glob("/proc/[0-9]*")
	require.NoError(t, err)
	var found []string
	for _, p := range procs {
		cwd, err := os.Readlink(p + "/cwd")
		if err == nil && strings.HasPrefix(cwd, prefix) {
			found = append(found, filepath.Base(p)+" "+cwd)
		}
	}
	return found
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
