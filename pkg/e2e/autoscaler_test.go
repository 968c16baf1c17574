package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// Under real load the autoscaler grows the group as the scheduler's
// adaptive_target asks, new workers join, and it shrinks back afterwards.
// On each Dask release the node has (issue 28).
func TestAutoscalerGrowsUnderLoadAndShrinksAfter(t *testing.T) {
	eachDask(t, testAutoscaler)
}

func testAutoscaler(t *testing.T, d testenv.DaskImage) {
	ns := newNamespace(t)
	createClusterOn(t, d, ns, "auto", 1)
	ip := schedulerIP(t, ns, "auto")
	waitRegistered(t, ns, "auto", "auto-default", ip, 1, 2*time.Minute)
	_, err := dask.KubernetesV1().DaskAutoscalers(ns).Create(context.Background(), &daskv1.DaskAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "auto", Namespace: ns},
		Spec:       daskv1.DaskAutoscalerSpec{Cluster: "auto", Minimum: 1, Maximum: 4},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	load := startClientOn(t, d, `
import time
from dask.distributed import Client
c = Client("tcp://`+ip+`:8786", timeout=30)
futures = c.map(time.sleep, [0.5] * 2000, pure=False)
print("submitted", flush=True)
c.gather(futures)
`)
	load.WaitLine(t, "submitted", time.Minute)
	// All four workers really join the scheduler.
	waitRegistered(t, ns, "auto", "auto-default", ip, 4, 3*time.Minute)

	load.Stop() // the client goes and its tasks with it
	waitRegistered(t, ns, "auto", "auto-default", ip, 1, 3*time.Minute)
	eventually(t, 30*time.Second, func() (bool, string) {
		as, err := dask.KubernetesV1().DaskAutoscalers(ns).Get(context.Background(), "auto", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return as.Status.DesiredWorkers != nil && *as.Status.DesiredWorkers == 1, fmt.Sprintf("desiredWorkers %v", as.Status.DesiredWorkers)
	})
}
