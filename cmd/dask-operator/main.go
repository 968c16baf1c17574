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
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/dask-operator/dask-operator/pkg/controller/manager"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	"github.com/dask-operator/dask-operator/pkg/metrics"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type flags struct {
	kubeconfig      string
	leaderElect     bool
	leaseNamespace  string
	leaseName       string
	leaseDuration   time.Duration
	renewDeadline   time.Duration
	retryPeriod     time.Duration
	metricsAddr     string
	profiling       bool
	healthAddr      string
	shutdownTimeout time.Duration
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
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "Run the controllers only while holding a coordination.k8s.io Lease, so that several replicas can run. Turn off for a single local run.")
	fs.StringVar(&f.leaseNamespace, "leader-election-namespace", "", "Namespace of the Lease. Default: the operator Pod's namespace, else default.")
	fs.StringVar(&f.leaseName, "leader-election-id", "dask-operator", "Name of the Lease.")
	fs.DurationVar(&f.leaseDuration, "leader-election-lease-duration", 15*time.Second, "How long followers wait after the leader's last renewal before they take over.")
	fs.DurationVar(&f.renewDeadline, "leader-election-renew-deadline", 10*time.Second, "How long the leader retries renewing before it stops working (less than the lease duration).")
	fs.DurationVar(&f.retryPeriod, "leader-election-retry-period", 2*time.Second, "How often replicas try to acquire or renew the Lease.")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus /metrics endpoint; 0 turns it off.")
	fs.BoolVar(&f.profiling, "profiling", false, "Serve Go's profiles (net/http/pprof) under /debug/pprof/ on the metrics address, as Kubernetes components do; for finding where memory or CPU goes.")
	fs.StringVar(&f.healthAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz; 0 turns them off.")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "On SIGTERM, how long in-flight syncs may take to finish.")
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

// schedulerResolver is how scheduler calls are sent: cfg must not carry the
// writes' fence (its deadline would cut a retire short); with a fence, the
// calls have their own (fencedResolver).
func schedulerResolver(f *flags, cfg *rest.Config, inCluster bool, fence *writeFence) (daskapi.Resolver, error) {
	r, err := resolver(f, cfg, inCluster)
	if err != nil || fence == nil {
		return r, err
	}
	return &fencedResolver{Resolver: r, fence: fence}, nil
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
	metrics.Install() // before any client or queue exists
	cfg, inCluster, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	// The Lease identity in the user agent tells replicas apart in audit logs.
	id := leaseIdentity()
	cfg.UserAgent = "dask-operator (" + id + ")"
	cfg.Wrap(metrics.CountRequests) // inside the fence: what is sent is counted
	// The Lease is renewed with cfg; everything else goes through the fence,
	// so that only the leader writes.
	leaseCfg := rest.CopyConfig(cfg)
	// Scheduler calls (through the API server's proxy, or direct) have
	// deadlines of their own (--retire-timeout: a retire waits while Dask
	// moves data) and a fence of their own (fencedResolver), not the
	// writes' deadline of a renewal.
	schedulerCfg := rest.CopyConfig(cfg)
	var fence *writeFence
	if f.leaderElect {
		fence = newWriteFence(f.renewDeadline)
		cfg.Wrap(fence.wrap)
	}
	if f.opts.Resolver, err = schedulerResolver(f, schedulerCfg, inCluster, fence); err != nil {
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
	// Events get a client (and so a rate limiter) of their own: they are
	// best effort and must not delay the work they report.
	events, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	f.opts.Events = events.CoreV1()
	// Kueue's Workloads, when Kueue is installed, through the dynamic client.
	if f.opts.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	ctrl, err := manager.New(kube, dask, f.opts)
	if err != nil {
		return err
	}
	if err := metrics.RegisterState(ctrl); err != nil {
		return err
	}
	if err := serve(ctx, f.metricsAddr, metricsHandlers(f.profiling)); err != nil {
		return err
	}
	if err := serve(ctx, f.healthAddr, map[string]http.Handler{
		"/healthz": probe(func() error { return ctrl.Stalled(stallThreshold) }),
		"/readyz": probe(func() error {
			if !ctrl.HasSynced() {
				return errors.New("informer caches not synced yet")
			}
			return nil
		}),
	}); err != nil {
		return err
	}

	klog.InfoS("Starting dask-operator", "host", cfg.Host, "namespaces", f.namespaces.String(), "workers", f.opts.Workers, "leaderElection", f.leaderElect)
	ctrl.Start(ctx)
	if !f.leaderElect {
		return ctrl.RunWorkers(ctx, f.shutdownTimeout)
	}
	leaseKube, err := kubernetes.NewForConfig(leaseCfg)
	if err != nil {
		return err
	}
	return runAsLeader(ctx, f, leaseKube, id, fence, func(stop, lead context.Context) error {
		return ctrl.RunWorkersUntil(stop, lead, f.shutdownTimeout)
	})
}

// stallThreshold is how long a queue may hold work without finishing any
// item before /healthz fails and the kubelet restarts the operator. Scheduler
// calls run in the background and syncs are short, so this means a bug.
const stallThreshold = 5 * time.Minute

func probe(check func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if err := check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// serve runs an HTTP server on addr until ctx ends; "0" or "" turns it off.
func serve(ctx context.Context, addr string, handlers map[string]http.Handler) error {
	if addr == "0" || addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	for path, h := range handlers {
		mux.Handle(path, h)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.InfoS("Serving", "address", l.Addr().String(), "paths", fmt.Sprint(mapKeys(handlers)))
	return nil
}

// metricsHandlers are what the metrics address serves: /metrics and, with
// --profiling, net/http/pprof's handlers (heap, goroutine, CPU profile...)
// under /debug/pprof/.
func metricsHandlers(profiling bool) map[string]http.Handler {
	handlers := map[string]http.Handler{
		"/metrics": promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}),
	}
	if !profiling {
		return handlers
	}
	handlers["/debug/pprof/"] = http.HandlerFunc(pprof.Index)
	handlers["/debug/pprof/cmdline"] = http.HandlerFunc(pprof.Cmdline)
	handlers["/debug/pprof/profile"] = http.HandlerFunc(pprof.Profile)
	handlers["/debug/pprof/symbol"] = http.HandlerFunc(pprof.Symbol)
	handlers["/debug/pprof/trace"] = http.HandlerFunc(pprof.Trace)
	return handlers
}

func mapKeys(m map[string]http.Handler) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// leaseIdentity names this replica in the Lease: its host (the Pod's name)
// and a UUID, unique across restarts.
func leaseIdentity() string {
	host, _ := os.Hostname()
	return host + "_" + string(uuid.NewUUID())
}

// runAsLeader runs work while this replica holds the Lease. work gets two
// contexts: stop ends on SIGTERM (let in-flight syncs finish), lead ends when
// the Lease is lost (stop everything at once: another replica leads). The
// Lease is released only after work has returned, so that two replicas never
// work at once. Losing the Lease returns an error, so the process exits and
// restarts as a follower.
// Each renewal opens the fence (when not nil) for the renew deadline.
func runAsLeader(ctx context.Context, f *flags, kube kubernetes.Interface, id string, fence *writeFence,
	work func(stop, lead context.Context) error) error {
	ns := f.leaseNamespace
	if ns == "" {
		ns = "default"
		if data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			ns = strings.TrimSpace(string(data))
		}
	}
	var lock resourcelock.Interface = &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: f.leaseName, Namespace: ns},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	if fence != nil {
		lock = &fencedLock{Interface: lock, fence: fence}
	}
	started := make(chan struct{})
	workDone := make(chan error, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		ReleaseOnCancel: true,
		LeaseDuration:   f.leaseDuration,
		RenewDeadline:   f.renewDeadline,
		RetryPeriod:     f.retryPeriod,
		Name:            f.leaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lead context.Context) {
				klog.InfoS("Became the leader", "lease", klog.KRef(ns, f.leaseName), "identity", id)
				close(started)
				workDone <- work(ctx, lead)
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(identity string) {
				if identity != id {
					klog.InfoS("Following the leader", "lease", klog.KRef(ns, f.leaseName), "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	// The elector's own context ends only once the work is over: cancelling
	// it releases the Lease.
	electCtx, cancelElect := context.WithCancel(context.Background())
	defer cancelElect()
	electDone := make(chan struct{})
	go func() {
		defer close(electDone)
		le.Run(electCtx)
	}()

	select {
	case err := <-workDone:
		// The work ended by itself (its caches never synced, say).
		cancelElect()
		<-electDone
		if err == nil {
			err = errors.New("the workers stopped")
		}
		return err
	case <-ctx.Done():
		// SIGTERM: a leader drains its in-flight syncs, then releases.
		var err error
		drained := false
		select {
		case <-started:
			err, drained = <-workDone, true
		default:
		}
		cancelElect()
		<-electDone
		if !drained {
			// Leadership began while we were cancelling: its work sees both
			// contexts ended and returns at once; wait for it all the same.
			select {
			case <-started:
				err = <-workDone
			default:
			}
		}
		klog.InfoS("Released the lease", "lease", klog.KRef(ns, f.leaseName))
		return err
	case <-electDone:
		// The Lease was lost: its context has ended, so the work is stopping
		// without writing; wait for it before the process exits.
		select {
		case <-started:
			<-workDone
		default:
		}
		return fmt.Errorf("lost the lease %s/%s; stopping", ns, f.leaseName)
	}
}

// defaultGCPercent is the operator's GOGC when the environment sets none. Its
// heap is mostly informer caches that live as long as the process, so
// collecting at 50 % growth instead of Go's 100 % keeps RSS about 15 % lower
// with a thousand clusters (119 -> 102 MiB) for no CPU that make bench can
// measure.
const defaultGCPercent = 50

// tuneGC applies defaultGCPercent unless GOGC is set.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:])
	klog.Flush()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "dask-operator:", err)
		os.Exit(1)
	}
}
