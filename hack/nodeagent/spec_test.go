package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"NAME": "w-1", "EMPTY": ""}
	for in, want := range map[string]string{
		"--name=$(NAME)":     "--name=w-1",
		"$(NAME)$(NAME)":     "w-1w-1",
		"$$(NAME)":           "$(NAME)",
		"$(MISSING)":         "$(MISSING)",
		"[$(EMPTY)]":         "[]",
		"$(NAME":             "$(NAME",
		"cost $5 and $$":     "cost $5 and $",
		"trailing $":         "trailing $",
		"no references here": "no references here",
	} {
		assert.Equal(t, want, expand(in, vars), "expand(%q)", in)
	}
}

type noValues struct{}

func (noValues) configMapKey(_, _, key string) (string, bool, error) {
	return "cm-" + key, key != "missing", nil
}
func (noValues) secretKey(_, _, key string) (string, bool, error) { return "", false, nil }

func TestContainerEnvAndCommand(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "w-1", Namespace: "ns", Labels: map[string]string{"app": "dask"}},
		Spec:       corev1.PodSpec{NodeName: "n"},
	}
	c := &corev1.Container{
		Name: "worker",
		Args: []string{"dask-worker", "--name", "$(DASK_WORKER_NAME)", "--listen", "$(POD_IP)", "$(UNSET)"},
		Env: []corev1.EnvVar{
			{Name: "DASK_WORKER_NAME", Value: "$(POD_NAME)"}, // defined later: left as written
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}},
			{Name: "LABEL", Value: "$(APP)-$(POD_NAME)"},
		},
	}
	vars, order, err := containerEnv(pod, c, "10.250.0.7", "10.250.0.1", noValues{})
	require.NoError(t, err)
	assert.Equal(t, []string{"DASK_WORKER_NAME", "POD_NAME", "POD_IP", "APP", "FROM_CM", "LABEL"}, order)
	assert.Equal(t, "$(POD_NAME)", vars["DASK_WORKER_NAME"])
	assert.Equal(t, "dask-w-1", vars["LABEL"])
	assert.Equal(t, "cm-k", vars["FROM_CM"])

	argv, err := commandLine(c, vars)
	require.NoError(t, err)
	assert.Equal(t, []string{"dask-worker", "--name", "$(POD_NAME)", "--listen", "10.250.0.7", "$(UNSET)"}, argv)

	c.Command = []string{"python", "-c"}
	c.Args = []string{"print($(APP))"}
	argv, err = commandLine(c, vars)
	require.NoError(t, err)
	assert.Equal(t, []string{"python", "-c", "print(dask)"}, argv)

	_, err = commandLine(&corev1.Container{Name: "empty"}, vars)
	assert.ErrorContains(t, err, "neither command nor args")

	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "missing"}}}}
	_, _, err = containerEnv(pod, c, "", "", noValues{})
	assert.ErrorContains(t, err, "env X")

	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}}
	_, _, err = containerEnv(pod, c, "", "", noValues{})
	assert.ErrorContains(t, err, "are supported here")
}

func TestReadinessTarget(t *testing.T) {
	c := &corev1.Container{
		Name:  "scheduler",
		Ports: []corev1.ContainerPort{{Name: "http-dashboard", ContainerPort: 8787}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http-dashboard"), Path: "/health"},
		}},
	}
	p, err := readinessTarget(c)
	require.NoError(t, err)
	assert.Equal(t, &probeTarget{http: true, path: "/health", port: 8787}, p)

	c.ReadinessProbe.HTTPGet.Port = intstr.FromString("nope")
	_, err = readinessTarget(c)
	assert.ErrorContains(t, err, `no port named "nope"`)

	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8786)}}}
	p, err = readinessTarget(c)
	require.NoError(t, err)
	assert.Equal(t, &probeTarget{port: 8786}, p)

	c.ReadinessProbe = nil
	p, err = readinessTarget(c)
	require.NoError(t, err)
	assert.Nil(t, p)
}

func TestHostsFile(t *testing.T) {
	running := func(ns, name, ip string, ready bool, labels map[string]string) *corev1.Pod {
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
		}
	}
	sched := map[string]string{"dask.org/component": "scheduler", "dask.org/cluster-name": "a"}
	svc := func(ns, name string, sel map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Selector: sel}}
	}
	pods := []*corev1.Pod{
		running("ns", "a-scheduler", "10.250.0.3", true, sched),
		running("ns", "a-scheduler-old", "10.250.0.9", false, sched),
		running("other", "b-scheduler", "10.250.0.4", false, sched),
		running("ns", "pending", "", false, map[string]string{"app": "x"}),
	}
	services := []*corev1.Service{
		svc("ns", "a-scheduler", sched),
		svc("other", "b-scheduler", sched),
		svc("ns", "no-endpoints", map[string]string{"app": "x"}),
		svc("ns", "no-selector", nil),
	}
	me := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a-worker-1"}}
	hosts := hostsFile(me, "10.250.0.5", "cluster.local", serviceEntries(services, pods))
	lines := strings.Split(strings.TrimSpace(hosts), "\n")
	assert.Contains(t, lines, "10.250.0.5\ta-worker-1")
	// The ready Pod wins over a running one; short names only in the pod's namespace.
	assert.Contains(t, lines, "10.250.0.3\ta-scheduler.ns.svc.cluster.local a-scheduler.ns.svc a-scheduler.ns a-scheduler")
	assert.Contains(t, lines, "10.250.0.4\tb-scheduler.other.svc.cluster.local b-scheduler.other.svc b-scheduler.other")
	assert.NotContains(t, hosts, "no-endpoints")
	assert.NotContains(t, hosts, "no-selector")
	assert.Contains(t, lines, "127.0.0.1\tlocalhost")
}

func TestEnviron(t *testing.T) {
	env := environ("w-1", "/state/pods/w", "/state/bin",
		map[string]string{"DASK_X": "default", "DASK_Y": "default"},
		map[string]string{"DEMO_SCHEDULER_SERVICE_HOST": "10.96.0.10", "DASK_Y": "link"},
		map[string]string{"DASK_Y": "pod", "PATH": "/custom"}, []string{"DASK_Y", "PATH"})
	assert.Contains(t, env, "DEMO_SCHEDULER_SERVICE_HOST=10.96.0.10")
	assert.Contains(t, env, "DASK_X=default")
	assert.Contains(t, env, "DASK_Y=pod")
	assert.Contains(t, env, "PATH=/custom")
	assert.Contains(t, env, "HOME=/state/pods/w")
	assert.Contains(t, env, "TMPDIR=/state/pods/w/tmp")
	assert.Contains(t, env, "HOSTNAME=w-1")
	def := environ("w-1", "/d", "/state/bin", nil, nil, nil, nil)
	assert.Contains(t, def, "PATH=/state/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

func TestNetworkNames(t *testing.T) {
	n, err := newNetwork("dko12", "10.250.12.0/24")
	require.NoError(t, err)
	assert.Equal(t, "10.250.12.1", n.NodeIP())
	assert.Equal(t, "10.250.12.7", n.addr(7))
	assert.Equal(t, "dko12-7", n.netnsName(7))
	assert.Equal(t, "dko12v254", n.vethName(254))
	assert.LessOrEqual(t, len("dko12v254"), 15)
	i, err := n.allocate()
	require.NoError(t, err)
	j, err := n.allocate()
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3}, []int{i, j})
	n.release(i)
	k, _ := n.allocate()
	assert.Equal(t, 4, k, "a freed address is not reused at once")
	for a := 5; a <= 254; a++ {
		got, err := n.allocate()
		require.NoError(t, err)
		require.Equal(t, a, got)
	}
	k, err = n.allocate()
	require.NoError(t, err)
	assert.Equal(t, 2, k, "after .254 the search wraps round to the freed .2")
	_, err = n.allocate()
	assert.ErrorContains(t, err, "no free address")

	_, err = newNetwork("dko12", "10.250.0.0/16")
	assert.ErrorContains(t, err, "/24")
	_, err = newNetwork("a-very-long-bridge", "10.250.0.0/24")
	assert.ErrorContains(t, err, "10 characters")
}

// As a kubelet: every Service of the Pod's namespace with a cluster IP, its
// name upper-cased with _ for -, unless enableServiceLinks is false.
func TestServiceLinks(t *testing.T) {
	svc := func(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
	}
	services := []*corev1.Service{
		svc("ns", "demo-scheduler", "10.96.0.10", corev1.ServicePort{Name: "tcp-comm", Port: 8786}, corev1.ServicePort{Name: "http-dashboard", Port: 8787}),
		svc("ns", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
		svc("other", "elsewhere", "10.96.0.11", corev1.ServicePort{Port: 80}),
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	links := serviceLinks(pod, services)
	assert.Equal(t, map[string]string{
		"DEMO_SCHEDULER_SERVICE_HOST":                "10.96.0.10",
		"DEMO_SCHEDULER_SERVICE_PORT":                "8786",
		"DEMO_SCHEDULER_SERVICE_PORT_TCP_COMM":       "8786",
		"DEMO_SCHEDULER_SERVICE_PORT_HTTP_DASHBOARD": "8787",
		"DEMO_SCHEDULER_PORT":                        "tcp://10.96.0.10:8786",
		"DEMO_SCHEDULER_PORT_8786_TCP":               "tcp://10.96.0.10:8786",
		"DEMO_SCHEDULER_PORT_8786_TCP_PROTO":         "tcp",
		"DEMO_SCHEDULER_PORT_8786_TCP_PORT":          "8786",
		"DEMO_SCHEDULER_PORT_8786_TCP_ADDR":          "10.96.0.10",
		"DEMO_SCHEDULER_PORT_8787_TCP":               "tcp://10.96.0.10:8787",
		"DEMO_SCHEDULER_PORT_8787_TCP_PROTO":         "tcp",
		"DEMO_SCHEDULER_PORT_8787_TCP_PORT":          "8787",
		"DEMO_SCHEDULER_PORT_8787_TCP_ADDR":          "10.96.0.10",
	}, links)
	off := false
	pod.Spec.EnableServiceLinks = &off
	assert.Empty(t, serviceLinks(pod, services))
}
