package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// TestKueueAdmitsAWorkloadAndItsWebhooksRun runs the real Kueue on the
// control plane: its validating webhook refuses an invalid ClusterQueue,
// and a Workload in a queue with quota is admitted.
func TestKueueAdmitsAWorkloadAndItsWebhooksRun(t *testing.T) {
	env, err := Start(Options{})
	require.NoError(t, err)
	defer env.Stop()
	_, err = env.StartKueue(KueueOptions{})
	require.NoError(t, err)
	client, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	apply := func(resource, ns, doc string) error {
		obj := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &obj.Object))
		_, err := client.Resource(KueueResource(resource)).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
		return err
	}
	require.NoError(t, apply("resourceflavors", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: default}}`))
	err = apply("clusterqueues", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: ClusterQueue, metadata: {name: bad},
  spec: {resourceGroups: [{coveredResources: [cpu], flavors: [{name: default, resources: [{name: cpu, nominalQuota: 1, borrowingLimit: 1}]}]}]}}`)
	require.ErrorContains(t, err, "borrowingLimit", "Kueue's webhook refuses a borrowing limit without a cohort")
	require.NoError(t, apply("clusterqueues", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: ClusterQueue, metadata: {name: cq},
  spec: {namespaceSelector: {}, resourceGroups: [{coveredResources: [cpu], flavors: [{name: default, resources: [{name: cpu, nominalQuota: 1}]}]}]}}`))
	require.NoError(t, apply("localqueues", "default", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: q, namespace: default}, spec: {clusterQueue: cq}}`))
	require.NoError(t, apply("workloads", "default", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: Workload, metadata: {name: w, namespace: default},
  spec: {queueName: q, podSets: [{name: main, count: 1, template: {spec: {restartPolicy: Never, containers: [{name: c, image: x, resources: {requests: {cpu: 500m}}}]}}}]}}`))
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		w, err := client.Resource(KueueResource("workloads")).Namespace("default").Get(ctx, "w", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(w.Object, "status", "conditions")
		for _, c := range conds {
			if m := c.(map[string]any); m["type"] == "Admitted" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "the Workload is admitted")
}
