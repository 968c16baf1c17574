// Package manager builds the operator's controllers, one per Dask kind
// (cluster, workergroup, job, autoscaler), on one set of shared informers
// and runs their workers. Each kind's controller watches the informers it
// needs itself; the manager only wires them up and runs them.
package manager

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/autoscaler"
	"github.com/dask-operator/dask-operator/pkg/controller/cluster"
	"github.com/dask-operator/dask-operator/pkg/controller/job"
	"github.com/dask-operator/dask-operator/pkg/controller/workergroup"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	daskscheme "github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned/scheme"
	"github.com/dask-operator/dask-operator/pkg/metrics"
)

func init() {
	// Events about Dask objects need their kinds in the scheme the recorder uses.
	utilruntime.Must(daskscheme.AddToScheme(scheme.Scheme))
}

// Manager runs the DaskCluster, DaskWorkerGroup, DaskJob and DaskAutoscaler
// controllers over shared caches.
type Manager struct {
	base   *controller.Base
	events record.EventBroadcaster
	kube   kubernetes.Interface

	clusters    *cluster.Controller
	groups      *workergroup.Controller
	jobs        *job.Controller
	autoscalers *autoscaler.Controller
}

// New builds the controllers; Run starts them.
func New(kube kubernetes.Interface, dask versioned.Interface, opts controller.Options) (*Manager, error) {
	events := record.NewBroadcaster(record.WithContext(context.Background()),
		record.WithCorrelatorOptions(record.CorrelatorOptions{SpamKeyFunc: controller.SpamKeyByReason}))
	base, err := controller.NewBase(kube, dask, opts, events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "dask-operator"}))
	if err != nil {
		return nil, err
	}
	return newManager(base, events, kube)
}

func newManager(base *controller.Base, events record.EventBroadcaster, kube kubernetes.Interface) (*Manager, error) {
	m := &Manager{base: base, events: events, kube: kube}
	var err error
	if m.clusters, err = cluster.New(base); err != nil {
		return nil, err
	}
	if m.groups, err = workergroup.New(base); err != nil {
		return nil, err
	}
	if m.jobs, err = job.New(base); err != nil {
		return nil, err
	}
	if m.autoscalers, err = autoscaler.New(base); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) queues() []*controller.Queue {
	return []*controller.Queue{m.clusters.Queue(), m.groups.Queue(), m.jobs.Queue(), m.autoscalers.Queue()}
}

// Start starts the informers. A replica that waits for leadership keeps
// its caches warm, so that it can take over at once.
func (m *Manager) Start(ctx context.Context) {
	m.base.Caches.Start(ctx.Done())
}

// Run starts the caches and the workers and blocks until ctx is done and the
// workers have stopped.
func (m *Manager) Run(ctx context.Context) error {
	m.Start(ctx)
	return m.RunWorkers(ctx, 0)
}

// RunWorkers waits for the caches, then runs the workers until ctx is done.
// Then it lets in-flight syncs finish, for at most drain (0: no limit).
func (m *Manager) RunWorkers(ctx context.Context, drain time.Duration) error {
	return m.RunWorkersUntil(ctx, context.Background(), drain)
}

// RunWorkersUntil runs the workers until stop or abort ends. When stop ends,
// no queued key is synced any more, and the syncs in flight keep their
// context for at most drain (0: no limit) to finish. When abort ends (the
// leader's lease is lost), every sync and scheduler call is cancelled at
// once: nothing may write after that.
func (m *Manager) RunWorkersUntil(stop, abort context.Context, drain time.Duration) error {
	work, cancelWork := context.WithCancel(abort)
	defer cancelWork()
	m.base.SetWorkContext(work)

	m.events.StartStructuredLogging(4)
	sink := m.base.Opts.Events
	if sink == nil {
		sink = m.kube.CoreV1()
	}
	m.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: sink.Events("")})
	defer m.events.Shutdown()

	klog.InfoS("Waiting for informer caches to sync")
	waitCtx, cancelWait := context.WithCancel(work)
	defer cancelWait()
	defer context.AfterFunc(stop, cancelWait)()
	if !m.base.Caches.WaitForSync(waitCtx.Done()) {
		return fmt.Errorf("caches did not sync: %w", waitCtx.Err())
	}
	workers := m.base.Opts.Workers
	klog.InfoS("Starting workers", "workersPerQueue", workers)
	done := make(chan struct{})
	queues := m.queues()
	for _, q := range queues {
		go func() {
			q.Run(work, workers)
			done <- struct{}{}
		}()
	}
	select {
	case <-stop.Done():
		klog.InfoS("Stopping: letting in-flight syncs finish", "timeout", drain)
	case <-work.Done():
		klog.InfoS("Aborting: in-flight syncs are cancelled")
	}
	for _, q := range queues {
		q.Stop()
	}
	var timeout <-chan time.Time
	if drain > 0 {
		timeout = time.After(drain)
	}
	for range queues {
		select {
		case <-done:
		case <-timeout:
			cancelWork()
			return fmt.Errorf("in-flight syncs did not finish within %s", drain)
		}
	}
	klog.InfoS("Workers stopped")
	return nil
}

// HasSynced reports whether the caches have been filled.
func (m *Manager) HasSynced() bool { return m.base.Caches.HasSynced() }

// Stalled returns an error when a queue has held work for longer than
// threshold without finishing any item.
func (m *Manager) Stalled(threshold time.Duration) error {
	return controller.Stalled(m.queues(), threshold)
}

// DaskState counts the Dask resources in the caches, for the metrics a
// scrape reads.
func (m *Manager) DaskState() metrics.State { return m.base.DaskState() }
