package testenv

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// TestControlPlaneRunsPodsAndLeavesNothingBehind starts the whole control
// plane, runs a Pod to Ready on the kwok node, and checks that Stop ends
// every process it started.
func TestControlPlaneRunsPodsAndLeavesNothingBehind(t *testing.T) {
	env, err := Start(Options{Nodes: true})
	require.NoError(t, err)
	pids := env.Pids()
	require.Len(t, pids, 5, "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok")
	defer env.Stop()

	client, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The CRDs are served.
	resources, err := client.Discovery().ServerResourcesForGroupVersion("kubernetes.dask.org/v1")
	require.NoError(t, err)
	var names []string
	for _, r := range resources.APIResources {
		names = append(names, r.Name)
	}
	assert.Subset(t, names, []string{"daskclusters", "daskworkergroups", "daskjobs", "daskautoscalers"})

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "none"}}},
	}
	_, err = client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods("default").Get(ctx, "probe", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p.Spec.NodeName == env.NodeName && p.Status.PodIP != "", nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "the Pod is scheduled on the kwok node and becomes Ready")

	dir := env.Dir
	env.Stop()
	for _, pid := range pids {
		assert.False(t, alive(pid), "process %d survived Stop", pid)
	}
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "the temporary folder is removed")
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie still answers kill 0; it has exited all the same.
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !containsState(string(data), 'Z')
}

func containsState(stat string, state byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' && i+2 < len(stat) {
			return stat[i+2] == state
		}
	}
	return false
}
