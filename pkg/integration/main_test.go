package integration

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
	// kueueProc is the Kueue controller manager the Kueue tests use.
	kueueProc *testenv.Kueue
)

// Settings of the operator under test: short enough for tests, long enough
// to observe what happens before they run out.
const (
	retireFallback = 8 * time.Second
	pollInterval   = time.Second
)

// The operator reaches schedulers at http://127.0.0.1:<the Service's
// http-dashboard port>: tests that need a real scheduler start one on
// loopback and give the Service its port.
const schedulerURLTemplate = "http://127.0.0.1:{{.Port}}"

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("integration tests need a control plane: not run with -short")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{Nodes: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	defer env.Stop()
	kube = kubernetes.NewForConfigOrDie(env.Config)
	dask = versioned.NewForConfigOrDie(env.Config)
	// The real Kueue, installed before the operator starts (it looks for
	// Kueue's API once, at start): the Kueue tests queue through it.
	kueueProc, err = env.StartKueue(testenv.KueueOptions{
		// Elastic workload slices (alpha in v0.17): only for objects
		// annotated kueue.x-k8s.io/elastic-job.
		FeatureGates: "ElasticJobsViaWorkloadSlices=true",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start kueue:", err)
		return 1
	}

	resolver, err := daskapi.NewTemplateResolver(schedulerURLTemplate)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	op, err := env.RunOperator(controller.Options{
		Resolver:               resolver,
		RetireFallbackAfter:    retireFallback,
		RetireTimeout:          30 * time.Second,
		SchedulerPollInterval:  pollInterval,
		AutoscalerCooldown:     2 * time.Second,
		ScaleDownStabilization: 3 * time.Second,
		SchedulerCallTimeout:   2 * time.Second,
	}, filepath.Join(os.TempDir(), "dask-operator-integration.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	op.Stop(code != 0, kueueProc.Log)
	return code
}
