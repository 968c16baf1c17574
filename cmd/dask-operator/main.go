// Command dask-operator runs the Dask operator: it watches DaskClusters,
// DaskWorkerGroups, DaskJobs and DaskAutoscalers and manages their Pods and
// Services. In a Pod it uses the in-cluster configuration; elsewhere
// --kubeconfig or KUBECONFIG.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type flags struct {
	kubeconfig      string
	namespaces      stringList
	qps             float64
	burst           int
	opts            controller.Options
	schedulerURL    string
	schedulerAccess string
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("dask-operator", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Default: $KUBECONFIG, else the in-cluster configuration.")
	fs.Var(&f.namespaces, "namespace", "Namespace to watch; repeat for several. Default: all namespaces.")
	fs.Float64Var(&f.qps, "kube-api-qps", 100, "Requests per second to the API server.")
	fs.IntVar(&f.burst, "kube-api-burst", 200, "Burst of requests to the API server.")
	fs.IntVar(&f.opts.Workers, "workers", 5, "Concurrent syncs per resource kind.")
	fs.StringVar(&f.opts.ClusterDomain, "cluster-domain", "cluster.local", "DNS domain of the cluster, used in DASK_SCHEDULER_ADDRESS.")
	fs.StringVar(&f.schedulerAccess, "scheduler-access", "auto",
		"How to reach Dask schedulers' HTTP API: direct (Service DNS, for an operator in a Pod), proxy (the API server's service proxy, for an operator outside the cluster) or auto (direct in a Pod, else proxy).")
	fs.StringVar(&f.schedulerURL, "scheduler-url-template", "",
		"Go template of a scheduler's HTTP base URL over .Namespace, .Cluster, .Service and .Port; overrides --scheduler-access. Example: http://{{.Service}}.{{.Namespace}}:{{.Port}}")
	fs.DurationVar(&f.opts.RetireTimeout, "retire-timeout", 2*time.Minute, "How long a scheduler may take to retire workers (it moves their data first).")
	fs.DurationVar(&f.opts.RetireFallbackAfter, "retire-fallback-timeout", 30*time.Second,
		"During a scale-down, how long the scheduler may be unreachable before running workers are deleted without retiring them (newest first; their data is lost). Negative: never.")
	fs.DurationVar(&f.opts.SchedulerPollInterval, "scheduler-poll-interval", 5*time.Second, "How often autoscalers and idle clusters ask their scheduler.")
	fs.DurationVar(&f.opts.AutoscalerCooldown, "autoscaler-cooldown", 15*time.Second, "Pause after an autoscaler changed a worker count.")
	fs.DurationVar(&f.opts.ScaleDownStabilization, "scale-down-stabilization", 60*time.Second,
		"An autoscaler shrinks a group only below the largest target the scheduler asked for during this window.")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	f.opts.Namespaces = f.namespaces
	if err := f.opts.OptionsFromEnv(); err != nil {
		return nil, err
	}
	return f, nil
}

func restConfig(kubeconfig string) (*rest.Config, bool, error) {
	if kubeconfig == "" {
		kubeconfig = os.Getenv(clientcmd.RecommendedConfigPathEnvVar)
	}
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, false, fmt.Errorf("no --kubeconfig, no KUBECONFIG and not in a Pod: %w", err)
		}
		return cfg, true, nil
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}, &clientcmd.ConfigOverrides{}).ClientConfig()
	return cfg, false, err
}

func resolver(f *flags, cfg *rest.Config, inCluster bool) (daskapi.Resolver, error) {
	if f.schedulerURL != "" {
		return daskapi.NewTemplateResolver(f.schedulerURL)
	}
	switch f.schedulerAccess {
	case "direct":
		return daskapi.DirectResolver{}, nil
	case "proxy":
		return daskapi.NewProxyResolver(cfg)
	case "auto":
		if inCluster {
			return daskapi.DirectResolver{}, nil
		}
		return daskapi.NewProxyResolver(cfg)
	}
	return nil, fmt.Errorf("--scheduler-access=%q: want direct, proxy or auto", f.schedulerAccess)
}

func run(ctx context.Context, args []string) error {
	f, err := parseFlags(args)
	if err != nil {
		return err
	}
	cfg, inCluster, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	cfg.UserAgent = "dask-operator"
	if f.opts.Resolver, err = resolver(f, cfg, inCluster); err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dask, err := versioned.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctrl, err := controller.New(kube, dask, f.opts)
	if err != nil {
		return err
	}
	klog.InfoS("Starting dask-operator", "host", cfg.Host, "namespaces", f.namespaces.String(), "workers", f.opts.Workers)
	return ctrl.Run(ctx)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:])
	klog.Flush()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "dask-operator:", err)
		os.Exit(1)
	}
}
