package resources

import (
	"k8s.io/apimachinery/pkg/api/equality"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func equalWorkerSpec(a, b *daskv1.WorkerSpec) bool {
	return equality.Semantic.DeepEqual(a, b)
}
