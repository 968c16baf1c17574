package integration

// Compatibility with the Python operator's own example and test resources,
// read from ../shared/upstream-examples (or $DASK_UPSTREAM_EXAMPLES). Without
// them these tests say so and skip (under CI they fail). Every other test
// of this package uses the project's own resources (pkg/testenv/testdata).

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// Every DaskCluster of the Python operator's examples yields the children
// its operator makes.
func TestUpstreamClustersYieldTheirChildren(t *testing.T) {
	clustersYieldTheirChildren(t, testenv.UpstreamExample(t, "simplecluster.yaml"), testenv.UpstreamExample(t, "docs-00-daskcluster-simple.yaml"))
}

// The Python operator's extra worker groups join their cluster.
func TestUpstreamWorkerGroupsJoinTheirCluster(t *testing.T) {
	workerGroupsJoinTheirCluster(t, testenv.UpstreamExample(t, "simplecluster.yaml"),
		testenv.UpstreamExample(t, "simpleworkergroup.yaml"), testenv.UpstreamExample(t, "docs-01-daskworkergroup-simple-highmem.yaml"))
}

// The Python operator's simplejob succeeds.
func TestUpstreamSimpleJobSucceeds(t *testing.T) {
	simpleJobSucceeds(t, testenv.UpstreamExample(t, "simplejob.yaml"))
}

// The Python operator's failedjob fails.
func TestUpstreamFailedJobFails(t *testing.T) {
	failedJobFails(t, testenv.UpstreamExample(t, "failedjob.yaml"))
}

// Every resource of the Python operator's examples and tests is accepted by
// the real API server with our CRDs, and the defaults its users rely on are
// applied.
func TestUpstreamExamplesAcceptedWithDefaults(t *testing.T) {
	ns := newNamespace(t)
	for _, ex := range testenv.UpstreamExamples(t) {
		t.Run(ex.File, func(t *testing.T) {
			out, err := dryRunCreate(t, ns, ex.Object)
			require.NoError(t, err)
			for _, path := range podSpecPaths(out.GetKind()) {
				spec, found, _ := unstructured.NestedMap(out.Object, path...)
				if !found {
					continue
				}
				for _, c := range spec["containers"].([]any) {
					ports, _ := c.(map[string]any)["ports"].([]any)
					for _, p := range ports {
						assert.Equal(t, "TCP", p.(map[string]any)["protocol"], "container port protocol defaults to TCP")
					}
				}
			}
			switch out.GetKind() {
			case "DaskCluster":
				_, found, _ := unstructured.NestedInt64(out.Object, "spec", "worker", "replicas")
				assert.True(t, found)
				idle, found, _ := unstructured.NestedInt64(out.Object, "spec", "idleTimeout")
				assert.True(t, found, "idleTimeout defaults to 0")
				assert.Zero(t, idle)
			case "DaskJob":
				policy, _, _ := unstructured.NestedString(out.Object, "spec", "job", "spec", "restartPolicy")
				want := "OnFailure"
				if ex.File == "failedjob.yaml" {
					want = "Never"
				}
				assert.Equal(t, want, policy, "the runner's restartPolicy defaults to OnFailure")
			}
		})
	}
}
