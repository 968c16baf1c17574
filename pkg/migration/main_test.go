package migration

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

var (
	env  *testenv.Env
	kube kubernetes.Interface
	dask versioned.Interface
)

func TestMain(m *testing.M) {
	flag.Parse()
	if ok, code := testenv.RealPodsCanRun("migration tests"); !ok {
		os.Exit(code)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{RealPods: true, Workloads: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	defer env.Stop()
	kube = kubernetes.NewForConfigOrDie(env.Config)
	dask = versioned.NewForConfigOrDie(env.Config)
	return m.Run()
}
