package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestInClusterEnvKeepsThePodsValues(t *testing.T) {
	assert.Equal(t, []string{"A=1", "KUBERNETES_SERVICE_HOST=" + apiHost, "KUBERNETES_SERVICE_PORT=443"}, inClusterEnv([]string{"A=1"}))
	assert.Equal(t, []string{"KUBERNETES_SERVICE_PORT=6443", "KUBERNETES_SERVICE_HOST=" + apiHost},
		inClusterEnv([]string{"KUBERNETES_SERVICE_PORT=6443"}), "a value the pod sets wins")
}

func TestServiceAccountIsMountedForTheProcessOnly(t *testing.T) {
	argv := enterArgs("/bin/nodeagent", "/", "/state/pods/p", []string{"/state"},
		map[string]string{saMount: "/state/pods/p/serviceaccount"}, []string{"python3", "-c", "print(1)"})
	assert.Equal(t, []string{"/bin/nodeagent", "enter", "--root=/", "--workdir=/state/pods/p", "--share=/state",
		"--mount=/state/pods/p/serviceaccount=" + saMount, "--", "python3", "-c", "print(1)"}, argv)
	no := false
	assert.False(t, automount(&corev1.Pod{Spec: corev1.PodSpec{AutomountServiceAccountToken: &no}}))
	assert.True(t, automount(&corev1.Pod{}))
}
