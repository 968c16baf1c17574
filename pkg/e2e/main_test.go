package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
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
	if ok, code := testenv.RealPodsCanRun("end-to-end tests"); !ok {
		os.Exit(code)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{RealPods: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	defer env.Stop()
	kube = kubernetes.NewForConfigOrDie(env.Config)
	dask = versioned.NewForConfigOrDie(env.Config)

	// What --scheduler-access=auto picks outside a cluster: the API server's
	// service proxy, which reaches the scheduler Pod at its address.
	resolver, err := daskapi.NewProxyResolver(env.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	op, err := env.RunOperator(controller.Options{
		Resolver:               resolver,
		RetireFallbackAfter:    time.Minute,
		RetireTimeout:          30 * time.Second,
		SchedulerPollInterval:  time.Second,
		AutoscalerCooldown:     2 * time.Second,
		ScaleDownStabilization: 3 * time.Second,
		SchedulerCallTimeout:   5 * time.Second,
	}, filepath.Join(os.TempDir(), "dask-operator-e2e.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	op.Stop(code != 0, filepath.Join(env.Dir, "nodeagent.log"))
	return code
}
