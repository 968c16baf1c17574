package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Issue 29, item 14: a kubelet (and the node agent, as one) gives every
// container of a Pod with service links variables for every Service of its
// namespace; each DaskCluster adds a Service, so thousands of clusters in a
// namespace overflow a process's environment. The Pods the operator makes
// carry none; a Pod of the user's own still does.
func TestOperatorPodsCarryNoServiceLinks(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	const services = 30
	for i := range services {
		_, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("other-%d", i)},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	// KUBERNETES_SERVICE_HOST is given with or without links, as by a kubelet.
	count := `import os; print("LINKS", sum(k.endswith("_SERVICE_HOST") and k != "KUBERNETES_SERVICE_HOST" for k in os.environ), flush=True)`
	_, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "users-own"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "c", Image: env.Latest().Image(), Command: []string{"python3", "-c", count},
		}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	createJob(t, ns, "links", count, 0, corev1.RestartPolicyNever)

	logs := func(pod string) string {
		var out string
		eventually(t, 3*time.Minute, func() (bool, string) {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err != nil || p.Status.Phase != corev1.PodSucceeded {
				return false, fmt.Sprintf("pod %s: %v", pod, err)
			}
			data, err := kube.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
			out = string(data)
			return err == nil && strings.Contains(out, "LINKS"), out
		})
		return out
	}
	users := logs("users-own")
	var n int
	_, err = fmt.Sscanf(users[strings.Index(users, "LINKS"):], "LINKS %d", &n)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, services, "the node gives a Pod with service links one set per Service")
	assert.Contains(t, logs(resources.RunnerPodName("links")), "LINKS 0\n", "the job's runner carries none")

}
