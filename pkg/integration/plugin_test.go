package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskctl"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// plugin runs kubectl dask and requires it to succeed.
func plugin(t *testing.T, args ...string) string {
	t.Helper()
	res := env.Plugin(t, args...)
	require.Equal(t, 0, res.Code, "kubectl dask %s:\n%s%s", strings.Join(args, " "), res.Stdout, res.Stderr)
	return res.Stdout
}

// pluginFails runs kubectl dask, requires it to fail with one clear line
// on stderr (no usage text, no stack trace) and returns that line.
func pluginFails(t *testing.T, args ...string) string {
	t.Helper()
	res := env.Plugin(t, args...)
	require.NotEqual(t, 0, res.Code, "kubectl dask %s succeeded:\n%s", strings.Join(args, " "), res.Stdout)
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	assert.Len(t, lines, 1, "one line on stderr: %q", res.Stderr)
	assert.True(t, strings.HasPrefix(lines[0], "error: "), "%q", lines[0])
	assert.NotContains(t, res.Stderr, "goroutine")
	assert.NotContains(t, res.Stderr, "Usage:")
	return lines[0]
}

// The cluster lifecycle from the command line: create (as make_cluster_spec
// builds it) and wait, get as table/wide/json, scale, adapt, scale again
// (which removes the autoscaler, as the Python client does), delete --wait.
func TestPluginClusterLifecycle(t *testing.T) {
	ns := newNamespace(t)
	out := plugin(t, "-n", ns, "create", "cluster", "demo", "--workers", "2", "--env", "A=1", "--wait", "--timeout", "2m")
	assert.Contains(t, out, "daskcluster.kubernetes.dask.org/demo created")
	assert.Contains(t, out, "scheduler: tcp://demo-scheduler."+ns+".svc.cluster.local:8786")
	c := getCluster(t, ns, "demo")
	want := daskctl.ClusterSpec(daskctl.ClusterOptions{Name: "demo", Workers: int32p(2), Env: []corev1.EnvVar{{Name: "A", Value: "1"}}})
	assert.Equal(t, want.Spec.Worker.Spec.Containers[0].Args, c.Spec.Worker.Spec.Containers[0].Args)
	assert.Equal(t, []string{"dask", "scheduler", "--host", "0.0.0.0"}, c.Spec.Scheduler.Spec.Containers[0].Args)
	waitWorkers(t, ns, "demo", "demo-default", 2, time.Minute)

	eventually(t, 30*time.Second, func() (bool, string) {
		out = plugin(t, "-n", ns, "get", "clusters")
		return strings.Contains(out, "default:2/2"), out
	})
	assert.Regexp(t, `(?m)^NAME\s+PHASE\s+WORKERS\s+SCHEDULER\s+DASHBOARD\s+AGE$`, out)
	assert.Regexp(t, `(?m)^demo\s+Running\s+default:2/2\s+tcp://demo-scheduler\.`+ns+`\.svc\.cluster\.local:8786\s+http://demo-scheduler\.`, out)
	all := plugin(t, "get", "clusters", "-A")
	assert.Regexp(t, `(?m)^NAMESPACE\s+NAME\s+PHASE`, all)
	assert.Contains(t, all, ns)
	wide := plugin(t, "-n", ns, "get", "clusters", "-o", "wide")
	assert.Contains(t, wide, "IMAGES")
	assert.Contains(t, wide, daskctl.DefaultImage)
	var got daskv1.DaskCluster
	require.NoError(t, json.Unmarshal([]byte(plugin(t, "-n", ns, "get", "cluster", "demo", "-o", "json")), &got))
	assert.Equal(t, "DaskCluster", got.Kind)
	assert.Equal(t, "demo", got.Name)
	var list map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(plugin(t, "-n", ns, "get", "groups", "-o", "yaml")), &list))
	assert.Equal(t, "DaskWorkerGroupList", list["kind"])
	assert.Regexp(t, `(?m)^demo-default\s+demo\s+2/2\s+2\s+`, plugin(t, "-n", ns, "get", "groups"))

	// Shell completion knows the names.
	assert.Regexp(t, `(?m)^demo$`, plugin(t, "-n", ns, "__complete", "scale", ""))
	assert.Regexp(t, `(?m)^demo-default$`, plugin(t, "-n", ns, "__complete", "get", "groups", ""))
	assert.Regexp(t, `(?m)^clusters$`, plugin(t, "-n", ns, "__complete", "get", ""))

	assert.Contains(t, plugin(t, "-n", ns, "scale", "demo", "3"), "scaled to 3")
	waitWorkers(t, ns, "demo", "demo-default", 3, time.Minute)

	plugin(t, "-n", ns, "adapt", "demo", "--min", "1", "--max", "4")
	as, err := dask.KubernetesV1().DaskAutoscalers(ns).Get(context.Background(), "demo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, daskv1.DaskAutoscalerSpec{Cluster: "demo", Minimum: 1, Maximum: 4}, as.Spec)
	plugin(t, "-n", ns, "adapt", "demo", "--min", "2", "--max", "5")
	as, err = dask.KubernetesV1().DaskAutoscalers(ns).Get(context.Background(), "demo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(5), as.Spec.Maximum, "adapt again updates the autoscaler")
	assert.Regexp(t, `(?m)^demo\s+demo\s+2\s+5\s+`, plugin(t, "-n", ns, "get", "autoscalers"))

	plugin(t, "-n", ns, "scale", "demo", "1")
	_, err = dask.KubernetesV1().DaskAutoscalers(ns).Get(context.Background(), "demo", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "scale removes the autoscaler: %v", err)
	waitWorkers(t, ns, "demo", "demo-default", 1, time.Minute)

	assert.Contains(t, plugin(t, "-n", ns, "delete", "cluster", "demo", "--wait"), "deleted")
	_, err = dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), "demo", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "gone after --wait: %v", err)
}

func int32p(v int32) *int32 { return &v }

// --dry-run=client prints what would be created and creates nothing.
func TestPluginDryRun(t *testing.T) {
	ns := newNamespace(t)
	out := plugin(t, "-n", ns, "create", "cluster", "dry", "--dry-run=client", "-o", "yaml", "--workers", "4",
		"--resources", `{"limits":{"memory":"2Gi"}}`, "--scheduler-service-type", "NodePort", "--idle-timeout", "60")
	var c daskv1.DaskCluster
	require.NoError(t, yaml.Unmarshal([]byte(out), &c))
	assert.Equal(t, "DaskCluster", c.Kind)
	assert.Equal(t, int32(4), *c.Spec.Worker.Replicas)
	assert.Equal(t, "2Gi", c.Spec.Worker.Spec.Containers[0].Resources.Limits.Memory().String())
	assert.Equal(t, corev1.ServiceTypeNodePort, c.Spec.Scheduler.Service.Type)
	assert.Equal(t, int64(60), c.Spec.IdleTimeout)
	_, err := dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), "dry", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
	// The printed object is accepted as it is.
	path := filepath.Join(t.TempDir(), "dry.yaml")
	require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
	kubectl(t, "apply", "-n", ns, "-f", path)
}

// job submit makes a DaskJob whose runner runs the command in a folder
// holding the --file files (a ConfigMap the job owns); get jobs lists it;
// delete job --wait removes it with what it made.
func TestPluginJobSubmit(t *testing.T) {
	ns := newNamespace(t)
	script := filepath.Join(t.TempDir(), "work.py")
	require.NoError(t, os.WriteFile(script, []byte("print('hello from the job')\n"), 0o644))
	out := plugin(t, "-n", ns, "job", "submit", "etl", "--file", script, "--workers", "1", "--", "python", "work.py")
	assert.Contains(t, out, "daskjob.kubernetes.dask.org/etl submitted")
	job, err := dask.KubernetesV1().DaskJobs(ns).Get(context.Background(), "etl", metav1.GetOptions{})
	require.NoError(t, err)
	runner := job.Spec.Job.Spec.Containers[0]
	assert.Equal(t, []string{"python", "work.py"}, runner.Args)
	assert.Equal(t, daskctl.FileMount, runner.WorkingDir)
	assert.Equal(t, int32(1), *job.Spec.Cluster.Spec.Worker.Replicas)
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "etl-files", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "print('hello from the job')\n", cm.Data["work.py"])
	require.Len(t, cm.OwnerReferences, 1)
	assert.Equal(t, job.UID, cm.OwnerReferences[0].UID)
	eventually(t, time.Minute, func() (bool, string) {
		out = plugin(t, "-n", ns, "get", "jobs")
		return strings.Contains(out, "etl") && !strings.Contains(out, "<none>"), out
	})
	assert.Regexp(t, `(?m)^NAME\s+STATUS\s+CLUSTER\s+RUNNER\s+ATTEMPTS\s+AGE$`, out)

	pluginFails(t, "-n", ns, "job", "submit", "nocommand", "python")
	plugin(t, "-n", ns, "delete", "job", "etl", "--wait")
	_, err = dask.KubernetesV1().DaskJobs(ns).Get(context.Background(), "etl", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
}

// Bad input: one clear line and a non-zero exit for each.
func TestPluginBadInput(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", nil)

	assert.Contains(t, pluginFails(t, "-n", ns, "scale", "nope", "2"), `daskcluster "nope" not found in namespace "`+ns+`"`)
	assert.Contains(t, pluginFails(t, "-n", "default", "get", "cluster", "simple"), `DaskCluster "simple" not found in namespace "default"`)
	assert.Contains(t, pluginFails(t, "-n", ns, "logs", "nope"), `daskcluster "nope" not found`)
	assert.Contains(t, pluginFails(t, "-n", ns, "port-forward", "nope"), `daskcluster "nope" not found`)
	assert.Contains(t, pluginFails(t, "-n", ns, "scale", "simple", "many"), "want a number of workers")
	assert.Contains(t, pluginFails(t, "-n", ns, "get", "pods"), "unknown kind")
	assert.Contains(t, pluginFails(t, "-n", ns, "adapt", "simple", "--min", "5", "--max", "2"), "--min <= --max")
	assert.Contains(t, pluginFails(t, "-n", ns, "create", "cluster", "simple"), "already exists")
	assert.Contains(t, pluginFails(t, "-n", ns, "create", "cluster", "Bad_Name"), "invalid daskcluster")
	assert.Contains(t, pluginFails(t, "-n", ns, "--as", "nobody", "get", "clusters"), "forbidden")
	assert.Contains(t, pluginFails(t, "-n", ns, "delete", "cluster", "nope"), "not found")

	// A control plane without the CRDs.
	bare, err := testenv.Start(testenv.Options{SkipCRDs: true, SkipGarbageCollectorWait: true})
	require.NoError(t, err)
	t.Cleanup(bare.Stop)
	res := bare.Plugin(t, "get", "clusters")
	require.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "is not installed on this cluster")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, res.Stderr)
	assert.Contains(t, bare.Plugin(t, "version").Stdout, "kubernetes.dask.org/v1: not served")

	// An API server that is not there.
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: x, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: x, context: {cluster: x, user: x}}]
current-context: x
users: [{name: x, user: {token: t}}]
`), 0o600))
	res = env.Plugin(t, "--kubeconfig", kc, "get", "clusters")
	require.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "cannot reach the Kubernetes API server")
}

// version tells the plugin's and the API server's versions and that the
// Dask resources are served; --help reads like kubectl's.
func TestPluginVersionAndHelp(t *testing.T) {
	out := plugin(t, "version")
	assert.Regexp(t, `(?m)^kubectl-dask: `, out)
	assert.Regexp(t, `(?m)^Kubernetes: v1\.`, out)
	assert.Contains(t, out, "kubernetes.dask.org/v1: served")
	help := plugin(t, "--help")
	assert.Contains(t, help, "Usage:\n  kubectl dask [command]")
	for _, c := range []string{"get", "create", "scale", "adapt", "port-forward", "dashboard", "logs", "job", "delete", "version", "completion"} {
		assert.Regexp(t, `(?m)^  `+c+`\s`, help)
	}
	assert.Contains(t, plugin(t, "completion", "bash"), "__start_kubectl-dask")
}
