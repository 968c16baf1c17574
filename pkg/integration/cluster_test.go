package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func assertControlledBy(t *testing.T, obj metav1.Object, kind, name string, uid types.UID) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if assert.NotNilf(t, ref, "%s has no controller", obj.GetName()) {
		assert.Equal(t, kind, ref.Kind)
		assert.Equal(t, name, ref.Name)
		assert.Equal(t, uid, ref.UID)
		assert.True(t, ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion, "blockOwnerDeletion")
	}
}

func assertNoFilteredAnnotations(t *testing.T, what string, annotations map[string]string) {
	t.Helper()
	for k := range annotations {
		assert.Falsef(t, strings.HasPrefix(k, "kopf.zalando.org") || strings.HasPrefix(k, "kubectl.kubernetes.io"),
			"%s carries the annotation %s, which must not be passed on", what, k)
	}
}

// A DaskCluster yields exactly the children the Python operator makes, with
// its names, labels, annotations and env.
func TestClusterYieldsItsChildren(t *testing.T) {
	clustersYieldTheirChildren(t, testenv.Fixture(t, "cluster.yaml"))
}

// Every DaskCluster given yields exactly the children the
// Python operator makes, with its names, labels, annotations and env.
func clustersYieldTheirChildren(t *testing.T, examples ...testenv.Example) {
	for _, ex := range examples {
		t.Run(ex.File, func(t *testing.T) {
			ns := newNamespace(t)
			u := create(t, ns, ex, nil)
			var want daskv1.DaskCluster
			toTyped(t, u, &want)
			name := want.Name
			replicas := int(*want.Spec.Worker.Replicas)
			ctx := context.Background()

			workers := waitWorkers(t, ns, name, name+"-default", replicas, time.Minute)
			eventually(t, 30*time.Second, func() (bool, string) {
				c := getCluster(t, ns, name)
				return c.Status.Phase == daskv1.DaskClusterRunning && c.Status.ReadyReplicas == int32(replicas),
					fmt.Sprintf("phase %q, %d ready workers", c.Status.Phase, c.Status.ReadyReplicas)
			})
			cluster := getCluster(t, ns, name)
			assert.Equal(t, cluster.Generation, cluster.Status.ObservedGeneration)
			assert.Equal(t, int32(replicas), cluster.Status.Replicas)
			if c := condition(cluster.Status.Conditions, "SchedulerReady"); assert.NotNil(t, c) {
				assert.Equal(t, metav1.ConditionTrue, c.Status)
			}
			if c := condition(cluster.Status.Conditions, "WorkersReady"); assert.NotNil(t, c) {
				assert.Equal(t, metav1.ConditionTrue, c.Status)
				assert.Contains(t, c.Message, fmt.Sprintf("%d/%d", replicas, replicas))
			}

			// Scheduler Pod.
			pod, err := kube.CoreV1().Pods(ns).Get(ctx, name+"-scheduler", metav1.GetOptions{})
			require.NoError(t, err)
			assertControlledBy(t, pod, "DaskCluster", name, cluster.UID)
			assert.Equal(t, name, pod.Labels["dask.org/cluster-name"])
			assert.Equal(t, "scheduler", pod.Labels["dask.org/component"])
			assert.Equal(t, "false", pod.Labels["sidecar.istio.io/inject"])
			for k, v := range want.Labels {
				assert.Equal(t, v, pod.Labels[k], "cluster label %s", k)
			}
			for k, v := range want.Spec.Scheduler.Metadata.Labels {
				assert.Equal(t, v, pod.Labels[k], "scheduler label %s", k)
			}
			for k, v := range want.Spec.Scheduler.Metadata.Annotations {
				assert.Equal(t, v, pod.Annotations[k], "scheduler annotation %s", k)
			}
			assertNoFilteredAnnotations(t, "scheduler Pod", pod.Annotations)
			_, n := envValue(pod.Spec.Containers[0], "DASK_SCHEDULER_ADDRESS")
			assert.Zero(t, n, "the scheduler gets no injected env")

			// Scheduler Service.
			svc, err := kube.CoreV1().Services(ns).Get(ctx, name+"-scheduler", metav1.GetOptions{})
			require.NoError(t, err)
			assertControlledBy(t, svc, "DaskCluster", name, cluster.UID)
			assert.Equal(t, want.Spec.Scheduler.Service.Type, svc.Spec.Type)
			assert.Equal(t, map[string]string{"dask.org/cluster-name": name, "dask.org/component": "scheduler"}, svc.Spec.Selector)
			assert.Len(t, svc.Spec.Ports, len(want.Spec.Scheduler.Service.Ports))
			assertNoFilteredAnnotations(t, "scheduler Service", svc.Annotations)

			// Default worker group.
			group, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(ctx, name+"-default", metav1.GetOptions{})
			require.NoError(t, err)
			assertControlledBy(t, group, "DaskCluster", name, cluster.UID)
			assert.Equal(t, "workergroup", group.Labels["dask.org/component"])
			assert.Equal(t, name, group.Labels["dask.org/cluster-name"])
			assert.Equal(t, name, group.Spec.Cluster)
			assertNoFilteredAnnotations(t, "default worker group", group.Annotations)
			assert.Equal(t, "dask.org/cluster-name="+name+",dask.org/component=worker,dask.org/workergroup-name="+name+"-default",
				group.Status.Selector)

			// Worker Pods.
			for _, w := range workers {
				assert.Regexp(t, "^"+name+"-default-worker-[0-9a-f]{10}$", w.Name)
				assertControlledBy(t, &w, "DaskWorkerGroup", group.Name, group.UID)
				assert.Equal(t, "worker", w.Labels["dask.org/component"])
				assert.Equal(t, group.Name, w.Labels["dask.org/workergroup-name"])
				assert.Equal(t, "false", w.Labels["sidecar.istio.io/inject"])
				for k, v := range want.Labels {
					assert.Equal(t, v, w.Labels[k], "cluster label %s on the worker", k)
				}
				for k, v := range want.Spec.Worker.Metadata.Labels {
					assert.Equal(t, v, w.Labels[k], "worker label %s", k)
				}
				for k, v := range want.Spec.Worker.Metadata.Annotations {
					assert.Equal(t, v, w.Annotations[k], "worker annotation %s", k)
				}
				for k, v := range want.Annotations {
					if resources.PassedOnAnnotation(k) {
						assert.Equal(t, v, w.Annotations[k], "cluster annotation %s reaches the worker", k)
					}
				}
				assertNoFilteredAnnotations(t, "worker Pod", w.Annotations)
				for _, c := range w.Spec.Containers {
					v, n := envValue(c, "DASK_WORKER_NAME")
					assert.Equal(t, 1, n)
					assert.Equal(t, w.Name, v)
					v, n = envValue(c, "DASK_SCHEDULER_ADDRESS")
					assert.Equal(t, 1, n)
					assert.Equal(t, fmt.Sprintf("tcp://%s-scheduler.%s.svc.cluster.local:8786", name, ns), v)
				}
			}
			// Annotations of the cluster reach the scheduler Pod and Service.
			for k, v := range want.Annotations {
				if resources.PassedOnAnnotation(k) {
					assert.Equal(t, v, pod.Annotations[k])
					assert.Equal(t, v, svc.Annotations[k])
					assert.Equal(t, v, group.Annotations[k])
				}
			}
		})
	}
}

// An extra worker group created before its cluster waits for it, then joins it.
func TestWorkerGroupJoinsItsCluster(t *testing.T) {
	workerGroupsJoinTheirCluster(t, testenv.Fixture(t, "cluster.yaml"), testenv.Fixture(t, "workergroup.yaml"))
}

// Additional worker groups (the first named simple-additional, with its own
// DASK_WORKER_NAME) join their cluster; a
// user-set DASK_WORKER_NAME wins and is not duplicated; the cluster adopts them.
func workerGroupsJoinTheirCluster(t *testing.T, cluster testenv.Example, groups ...testenv.Example) {
	ns := newNamespace(t)
	// The groups exist before their cluster: they wait, then start.
	want := int64(0)
	for _, g := range append([]testenv.Example{cluster}, groups...) {
		want += workerReplicas(g)
	}
	for _, g := range groups {
		create(t, ns, g, nil)
	}
	time.Sleep(time.Second)
	assert.Empty(t, workerPods(t, ns, "simple", "simple-additional"), "no workers before the cluster exists")
	eventually(t, 10*time.Second, func() (bool, string) {
		g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(context.Background(), "simple-additional", metav1.GetOptions{})
		require.NoError(t, err)
		c := condition(g.Status.Conditions, "ClusterFound")
		return c != nil && c.Status == metav1.ConditionFalse, "waiting for a ClusterFound=False condition"
	})

	create(t, ns, cluster, nil)
	dc := getCluster(t, ns, "simple")
	pods := waitWorkers(t, ns, "simple", "simple-additional", 1, time.Minute)
	for _, g := range groups[1:] {
		waitWorkers(t, ns, "simple", g.Object.GetName(), int(workerReplicas(g)), time.Minute)
	}

	c := pods[0].Spec.Containers[0]
	v, n := envValue(c, "DASK_WORKER_NAME")
	assert.Equal(t, 1, n, "a user-set variable is not duplicated")
	assert.Equal(t, "test-worker", v, "a user-set variable wins")
	_, n = envValue(c, "WORKER_ENV")
	assert.Equal(t, 1, n)
	assert.Equal(t, "label-value", pods[0].Labels["test-label"], "the cluster's labels reach workers of other groups")

	eventually(t, 30*time.Second, func() (bool, string) {
		for _, ex := range groups {
			name := ex.Object.GetName()
			g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(context.Background(), name, metav1.GetOptions{})
			require.NoError(t, err)
			ref := metav1.GetControllerOf(g)
			if ref == nil || ref.UID != dc.UID {
				return false, name + " is not adopted by its cluster"
			}
		}
		c := getCluster(t, ns, "simple")
		return int64(c.Status.Replicas) == want, fmt.Sprintf("cluster counts %d workers over its groups, want %d", c.Status.Replicas, want)
	})
}

// workerReplicas is an example's spec.worker.replicas (1 when unset, as
// the CRD defaults it); YAML numbers decode as float64.
func workerReplicas(ex testenv.Example) int64 {
	v, found, _ := unstructured.NestedFieldNoCopy(ex.Object.Object, "spec", "worker", "replicas")
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	if !found {
		return 1
	}
	return 0
}

// Deleted or ended Pods come back: the worker group and the cluster compare
// what exists with what is wanted on every sync.
func TestLostPodsAreReplaced(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", nil)
	ctx := context.Background()
	pods := waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)

	require.NoError(t, kube.CoreV1().Pods(ns).Delete(ctx, pods[0].Name, metav1.DeleteOptions{}))
	after := waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	assert.NotContains(t, podNames(after), pods[0].Name)

	// A worker Pod that failed is replaced too.
	failed := after[0].DeepCopy()
	failed.Status.Phase = corev1.PodFailed
	_, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, failed, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, time.Minute, func() (bool, string) {
		pods := workerPods(t, ns, "simple", "simple-default")
		names := podNames(pods)
		for _, n := range names {
			if n == failed.Name {
				return false, "the failed Pod is still there"
			}
		}
		return len(pods) == 2, fmt.Sprintf("%d workers", len(pods))
	})

	old, err := kube.CoreV1().Pods(ns).Get(ctx, "simple-scheduler", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, kube.CoreV1().Pods(ns).Delete(ctx, "simple-scheduler", metav1.DeleteOptions{}))
	eventually(t, time.Minute, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "simple-scheduler", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.UID != old.UID && isReady(p), "waiting for a new ready scheduler Pod"
	})

	require.NoError(t, kube.CoreV1().Services(ns).Delete(ctx, "simple-scheduler", metav1.DeleteOptions{}))
	eventually(t, time.Minute, func() (bool, string) {
		_, err := kube.CoreV1().Services(ns).Get(ctx, "simple-scheduler", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	require.NoError(t, dask.KubernetesV1().DaskWorkerGroups(ns).Delete(ctx, "simple-default", metav1.DeleteOptions{}))
	eventually(t, time.Minute, func() (bool, string) {
		g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(ctx, "simple-default", metav1.GetOptions{})
		return err == nil && g.DeletionTimestamp == nil, fmt.Sprint(err)
	})
	waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
}

// Deleting a DaskCluster removes everything it made, through the garbage collector.
func TestDeletingAClusterRemovesEverything(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", nil)
	applyFixture(t, ns, "workergroup.yaml", nil)
	ctx := context.Background()
	waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	waitWorkers(t, ns, "simple", "simple-additional", 1, time.Minute)
	eventually(t, 30*time.Second, func() (bool, string) {
		g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(ctx, "simple-additional", metav1.GetOptions{})
		return err == nil && metav1.GetControllerOf(g) != nil, "waiting for adoption"
	})

	require.NoError(t, dask.KubernetesV1().DaskClusters(ns).Delete(ctx, "simple", metav1.DeleteOptions{}))
	eventually(t, 90*time.Second, func() (bool, string) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		svcs, err := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		groups, err := dask.KubernetesV1().DaskWorkerGroups(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		_, err = dask.KubernetesV1().DaskClusters(ns).Get(ctx, "simple", metav1.GetOptions{})
		gone := apierrors.IsNotFound(err)
		return gone && len(pods.Items) == 0 && len(svcs.Items) == 0 && len(groups.Items) == 0,
			fmt.Sprintf("cluster gone: %v; %d pods, %d services, %d groups left", gone, len(pods.Items), len(svcs.Items), len(groups.Items))
	})
}

// kubectl scale works on both kinds through the scale subresource, and the
// default group and its cluster agree on the count whichever was scaled.
func TestKubectlScale(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", nil)
	applyFixture(t, ns, "workergroup.yaml", nil)
	waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)

	kubectl(t, "scale", "-n", ns, "daskcluster", "simple", "--replicas=4")
	waitWorkers(t, ns, "simple", "simple-default", 4, time.Minute)

	kubectl(t, "scale", "-n", ns, "daskworkergroup", "simple-additional", "--replicas=3")
	waitWorkers(t, ns, "simple", "simple-additional", 3, time.Minute)

	kubectl(t, "scale", "-n", ns, "daskworkergroup", "simple-default", "--replicas=5")
	waitWorkers(t, ns, "simple", "simple-default", 5, time.Minute)
	eventually(t, 30*time.Second, func() (bool, string) {
		c := getCluster(t, ns, "simple")
		return *c.Spec.Worker.Replicas == 5, fmt.Sprintf("the cluster's spec.worker.replicas is %d, want 5", *c.Spec.Worker.Replicas)
	})

	// Status follows within a second: count-only status writes are paced.
	eventually(t, 10*time.Second, func() (bool, string) {
		out := kubectl(t, "get", "-n", ns, "daskworkergroup", "simple-additional", "-o", "jsonpath={.status.replicas} {.status.selector}")
		return out == "3 dask.org/cluster-name=simple,dask.org/component=worker,dask.org/workergroup-name=simple-additional", out
	})
	eventually(t, 10*time.Second, func() (bool, string) {
		// Issue 15, item 10: the scale subresource describes the default
		// group, which its spec scales, so an HPA does not count the other
		// groups' workers into it.
		out := kubectl(t, "get", "-n", ns, "daskcluster", "simple", "--subresource=scale", "-o", "jsonpath={.spec.replicas} {.status.replicas} {.status.selector}")
		return out == "5 5 dask.org/cluster-name=simple,dask.org/component=worker,dask.org/workergroup-name=simple-default",
			out + " (want the default group's count and selector)"
	})

	// Scale-down of running workers with no scheduler to ask falls back after the timeout.
	kubectl(t, "scale", "-n", ns, "daskcluster", "simple", "--replicas=1")
	waitWorkers(t, ns, "simple", "simple-default", 1, time.Minute)
}

// Twenty rapid changes of replicas converge to the last value, and the
// number of worker Pods never exceeds the largest count asked for.
func TestRapidScalingNeverOvershoots(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(0), "spec", "worker", "replicas"))
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher, err := kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "dask.org/component=worker"})
	require.NoError(t, err)
	maxSeen := make(chan int, 1)
	go func() {
		live := map[string]bool{}
		peak := 0
		for ev := range watcher.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			switch ev.Type {
			case "ADDED", "MODIFIED":
				live[p.Name] = p.DeletionTimestamp == nil
			case "DELETED":
				delete(live, p.Name)
			}
			n := 0
			for _, alive := range live {
				if alive {
					n++
				}
			}
			peak = max(peak, n)
		}
		maxSeen <- peak
	}()

	values := []int64{3, 7, 2, 9, 4, 12, 1, 6, 8, 3, 10, 5, 11, 2, 7, 4, 9, 6, 12, 8}
	peak := int64(0)
	for _, v := range values {
		peak = max(peak, v)
		patch := fmt.Appendf(nil, `{"spec":{"worker":{"replicas":%d}}}`, v)
		_, err := dask.KubernetesV1().DaskClusters(ns).Patch(ctx, "simple", types.MergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
	}
	last := int(values[len(values)-1])
	waitWorkers(t, ns, "simple", "simple-default", last, 2*time.Minute)
	time.Sleep(2 * time.Second)
	assert.Len(t, workerPods(t, ns, "simple", "simple-default"), last, "stays at the last value")
	cancel()
	assert.LessOrEqual(t, <-maxSeen, int(peak), "worker Pods at any instant")
}

// A Service spec the API server rejects becomes phase Error, a False
// condition with the API server's message and a Warning event, without a
// hot loop; fixing the spec recovers.
func TestInvalidServiceSpecIsReported(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		ports, _, _ := unstructured.NestedSlice(u.Object, "spec", "scheduler", "service", "ports")
		// The CRD schema cannot check port names; the API server rejects the Service.
		ports[1].(map[string]any)["name"] = "Not_A_DNS_Label"
		require.NoError(t, unstructured.SetNestedSlice(u.Object, ports, "spec", "scheduler", "service", "ports"))
	})
	eventually(t, 30*time.Second, func() (bool, string) {
		c := getCluster(t, ns, "simple")
		cond := condition(c.Status.Conditions, "ResourcesCreated")
		ok := c.Status.Phase == daskv1.DaskClusterError && cond != nil && cond.Status == metav1.ConditionFalse &&
			strings.Contains(cond.Message, "spec.ports[1].name")
		return ok, fmt.Sprintf("phase %q, condition %+v", c.Status.Phase, cond)
	})
	eventually(t, 5*time.Second, func() (bool, string) {
		return hasEvent(t, ns, "simple", corev1.EventTypeWarning, "FailedCreate"), "no FailedCreate event"
	})
	// Workers still start meanwhile; once they are ready, nothing changes.
	eventually(t, 30*time.Second, func() (bool, string) {
		cond := condition(getCluster(t, ns, "simple").Status.Conditions, "WorkersReady")
		return cond != nil && cond.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", cond)
	})
	// Once settled, nothing is rewritten: a hot loop would never settle.
	// The quiet spell is longer than the longest wait of a status write
	// (a cluster's progress waits up to 4 s, to be written in one go).
	var c *daskv1.DaskCluster
	eventually(t, 30*time.Second, func() (bool, string) {
		c = getCluster(t, ns, "simple")
		time.Sleep(5 * time.Second)
		return getCluster(t, ns, "simple").ResourceVersion == c.ResourceVersion, "the status keeps changing"
	})
	rv := c.ResourceVersion
	time.Sleep(5 * time.Second)
	after := getCluster(t, ns, "simple")
	assert.Equal(t, rv, after.ResourceVersion, "no status rewrites while nothing changes: %+v\n%+v", c.Status, after.Status)

	patch := []byte(`{"spec":{"scheduler":{"service":{"ports":[{"name":"tcp-comm","port":8786,"targetPort":"tcp-comm"},{"name":"http-dashboard","port":8787,"targetPort":"http-dashboard"}]}}}}`)
	_, err := dask.KubernetesV1().DaskClusters(ns).Patch(context.Background(), "simple", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() (bool, string) {
		c := getCluster(t, ns, "simple")
		return c.Status.Phase == daskv1.DaskClusterRunning, fmt.Sprintf("phase %q", c.Status.Phase)
	})
}

// Objects created by the Python operator carry its finalizer; we remove it
// so they can be deleted.
func TestKopfFinalizerIsRemoved(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		u.SetFinalizers([]string{resources.KopfFinalizer})
	})
	eventually(t, 30*time.Second, func() (bool, string) {
		c := getCluster(t, ns, "simple")
		return len(c.Finalizers) == 0, fmt.Sprintf("finalizers %v", c.Finalizers)
	})
	require.NoError(t, dask.KubernetesV1().DaskClusters(ns).Delete(context.Background(), "simple", metav1.DeleteOptions{}))
	eventually(t, 30*time.Second, func() (bool, string) {
		_, err := dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), "simple", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// Labels and annotations added to a running cluster reach its scheduler
// and workers; the filtered prefixes still do not. Removed, they leave them.
func TestNewMetadataReachesRunningPods(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", nil)
	waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	patch := []byte(`{"metadata":{"labels":{"team":"ml"},"annotations":{"cost-center":"42","kubectl.kubernetes.io/last-applied-configuration":"{}"}}}`)
	_, err := dask.KubernetesV1().DaskClusters(ns).Patch(context.Background(), "simple", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() (bool, string) {
		pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			if p.Labels["team"] != "ml" || p.Annotations["cost-center"] != "42" {
				return false, p.Name + " lacks the new metadata"
			}
			if _, ok := p.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; ok {
				return false, p.Name + " got a filtered annotation"
			}
		}
		return len(pods.Items) == 3, fmt.Sprintf("%d pods", len(pods.Items))
	})

	// Removed from the cluster, they leave every child; what a user put on a
	// child directly stays.
	ctx := context.Background()
	svc, err := kube.CoreV1().Services(ns).Get(ctx, "simple-scheduler", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "ml", svc.Labels["team"])
	_, err = kube.CoreV1().Pods(ns).Patch(ctx, "simple-scheduler", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"mine":"yes"},"annotations":{"mine":"yes"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = dask.KubernetesV1().DaskClusters(ns).Patch(ctx, "simple", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"team":null},"annotations":{"cost-center":null}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() (bool, string) {
		var metas []metav1.ObjectMeta
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for _, p := range pods.Items {
			metas = append(metas, p.ObjectMeta)
		}
		svc, err := kube.CoreV1().Services(ns).Get(ctx, "simple-scheduler", metav1.GetOptions{})
		require.NoError(t, err)
		group, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(ctx, "simple-default", metav1.GetOptions{})
		require.NoError(t, err)
		metas = append(metas, svc.ObjectMeta, group.ObjectMeta)
		for _, m := range metas {
			if _, ok := m.Labels["team"]; ok {
				return false, m.Name + " still has the label team"
			}
			if _, ok := m.Annotations["cost-center"]; ok {
				return false, m.Name + " still has the annotation cost-center"
			}
		}
		return len(pods.Items) == 3, fmt.Sprintf("%d pods", len(pods.Items))
	})
	pod, err := kube.CoreV1().Pods(ns).Get(ctx, "simple-scheduler", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "yes", pod.Labels["mine"], "a label set on the Pod itself stays")
	assert.Equal(t, "yes", pod.Annotations["mine"], "an annotation set on the Pod itself stays")
	assert.Equal(t, "simple", pod.Labels["dask.org/cluster-name"])
}

// A scheduler Service whose selector misses the scheduler Pod (failedjob.yaml
// has one, copied from another job) is reported with a condition and a
// Warning event; fixing the selector clears it.
func TestServiceSelectorMissingTheSchedulerIsReported(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedStringMap(u.Object, map[string]string{
			"dask.org/cluster-name": "another", "dask.org/component": "scheduler",
		}, "spec", "scheduler", "service", "selector"))
	})
	eventually(t, time.Minute, func() (bool, string) {
		c := condition(getCluster(t, ns, "simple").Status.Conditions, "ServiceSelectsScheduler")
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "ServiceSelectorMismatch" &&
				strings.Contains(c.Message, "dask.org/cluster-name=another"),
			fmt.Sprintf("condition %+v", c)
	})
	eventually(t, 10*time.Second, func() (bool, string) {
		return hasEvent(t, ns, "simple", corev1.EventTypeWarning, "ServiceSelectorMismatch"), "no Warning event"
	})

	_, err := dask.KubernetesV1().DaskClusters(ns).Patch(context.Background(), "simple", types.JSONPatchType,
		[]byte(`[{"op":"remove","path":"/spec/scheduler/service/selector"}]`), metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, time.Minute, func() (bool, string) {
		c := condition(getCluster(t, ns, "simple").Status.Conditions, "ServiceSelectsScheduler")
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("condition %+v", c)
	})
	svc, err := kube.CoreV1().Services(ns).Get(context.Background(), "simple-scheduler", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "simple", svc.Spec.Selector["dask.org/cluster-name"], "an empty selector defaults to the scheduler's")
}
