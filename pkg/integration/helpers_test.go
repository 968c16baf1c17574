package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string { return env.Namespace(t, "t-") }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, timeout, cond)
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return env.Kubectl(t, "", args...)
}

// applyFixture creates one of the project's test resources
// (pkg/testenv/testdata) in namespace ns, optionally changed by edit, and
// returns the object as created.
func applyFixture(t *testing.T, ns, file string, edit func(*unstructured.Unstructured)) *unstructured.Unstructured {
	t.Helper()
	return create(t, ns, testenv.Fixture(t, file), edit)
}

// create creates a copy of ex in namespace ns, optionally changed by edit.
func create(t *testing.T, ns string, ex testenv.Example, edit func(*unstructured.Unstructured)) *unstructured.Unstructured {
	t.Helper()
	obj := ex.Object.DeepCopy()
	obj.SetNamespace(ns)
	if edit != nil {
		edit(obj)
	}
	return createUnstructured(t, obj)
}

func createUnstructured(t *testing.T, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	client := dynamic.NewForConfigOrDie(env.Config)
	gvr := daskv1.SchemeGroupVersion.WithResource(strings.ToLower(obj.GetKind()) + "s")
	created, err := client.Resource(gvr).Namespace(obj.GetNamespace()).Create(context.Background(), obj, metav1.CreateOptions{})
	require.NoError(t, err)
	return created
}

func toTyped(t *testing.T, u *unstructured.Unstructured, out runtime.Object) {
	t.Helper()
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out))
}

// workerPods returns the worker Pods of a group that are not being deleted.
func workerPods(t *testing.T, ns, cluster, group string) []corev1.Pod {
	t.Helper()
	list, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(resources.WorkerGroupSelector(cluster, group)).String(),
	})
	require.NoError(t, err)
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func podNames(pods []corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

// waitWorkers waits until a group has exactly n worker Pods, all Ready.
func waitWorkers(t *testing.T, ns, cluster, group string, n int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, timeout, func() (bool, string) {
		pods = workerPods(t, ns, cluster, group)
		ready := 0
		for i := range pods {
			if isReady(&pods[i]) {
				ready++
			}
		}
		return len(pods) == n && ready == n, fmt.Sprintf("group %s has %d worker Pods (%d ready), want %d", group, len(pods), ready, n)
	})
	return pods
}

func isReady(p *corev1.Pod) bool { return testenv.PodReady(p) }

func getCluster(t *testing.T, ns, name string) *daskv1.DaskCluster {
	t.Helper()
	c, err := dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return c
}

func envValue(c corev1.Container, name string) (string, int) {
	value, count := "", 0
	for _, e := range c.Env {
		if e.Name == name {
			value = e.Value
			count++
		}
	}
	return value, count
}

func condition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// events returns the reasons and messages of the events about an object.
func events(t *testing.T, ns, name string) []corev1.Event {
	t.Helper()
	list, err := kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + name,
	})
	require.NoError(t, err)
	return list.Items
}

func hasEvent(t *testing.T, ns, name, typ, reason string) bool {
	for _, e := range events(t, ns, name) {
		if e.Type == typ && e.Reason == reason {
			return true
		}
	}
	return false
}

// waitEvent waits for an event: the recorder writes events asynchronously, so
// one recorded just before an observed change may not be stored yet.
func waitEvent(t *testing.T, ns, name, typ, reason string) {
	t.Helper()
	eventually(t, 30*time.Second, func() (bool, string) {
		return hasEvent(t, ns, name, typ, reason), fmt.Sprintf("no %s event %s for %s", typ, reason, name)
	})
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
