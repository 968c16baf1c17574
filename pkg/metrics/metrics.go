// Package metrics exposes the operator's Prometheus metrics: client-go's
// workqueue and REST client metrics, and dask_operator_* metrics about the
// Dask resources, computed from the informer caches when scraped.
package metrics

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientmetrics "k8s.io/client-go/tools/metrics"
	"k8s.io/client-go/util/workqueue"
)

// Registry holds every metric the operator serves.
var Registry = prometheus.NewRegistry()

var (
	// ScaleUps counts worker Pods created by scale-ups.
	ScaleUps = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dask_operator_worker_pods_created_total", Help: "Worker Pods created.",
	})
	// ScaleDowns counts worker Pods deleted by scale-downs, by how they were chosen.
	ScaleDowns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dask_operator_worker_pods_deleted_total",
		Help: "Worker Pods deleted by scale-downs, by how they were chosen: unready, unregistered, retired (by the scheduler), fallback (scheduler unreachable), ended.",
	}, []string{"reason"})
	// SchedulerCalls counts calls to Dask schedulers' HTTP API, by route and result.
	SchedulerCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dask_operator_scheduler_calls_total", Help: "Calls to Dask schedulers' HTTP API, by route and result (ok, error).",
	}, []string{"route", "result"})
	// SyncDuration observes how long syncs take, by controller.
	SyncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dask_operator_sync_duration_seconds", Help: "Duration of one sync, by controller and result.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"controller", "result"})
)

var installOnce sync.Once

// Install registers the metrics and makes client-go's workqueues and REST
// clients report to them. Call it before building clients and queues.
func Install() {
	installOnce.Do(func() {
		Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		Registry.MustRegister(ScaleUps, ScaleDowns, SchedulerCalls, SyncDuration, APIRequests)
		registerWorkqueue()
		registerRESTClient()
	})
}

// Workqueue metrics, with the names Kubernetes components use.
var (
	wqDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_depth", Help: "Current depth of the workqueue.",
	}, []string{"name"})
	wqAdds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workqueue_adds_total", Help: "Adds handled by the workqueue.",
	}, []string{"name"})
	wqLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "workqueue_queue_duration_seconds", Help: "Time an item stays in the workqueue before it is processed.",
		Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
	}, []string{"name"})
	wqWork = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "workqueue_work_duration_seconds", Help: "Time processing an item takes.",
		Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
	}, []string{"name"})
	wqUnfinished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_unfinished_work_seconds", Help: "Seconds of work in progress not yet observed by work_duration.",
	}, []string{"name"})
	wqLongest = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_longest_running_processor_seconds", Help: "Seconds the longest running processor has been running.",
	}, []string{"name"})
	wqRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workqueue_retries_total", Help: "Retries handled by the workqueue.",
	}, []string{"name"})
)

type workqueueProvider struct{}

func (workqueueProvider) NewDepthMetric(n string) workqueue.GaugeMetric {
	return wqDepth.WithLabelValues(n)
}
func (workqueueProvider) NewAddsMetric(n string) workqueue.CounterMetric {
	return wqAdds.WithLabelValues(n)
}
func (workqueueProvider) NewLatencyMetric(n string) workqueue.HistogramMetric {
	return wqLatency.WithLabelValues(n)
}
func (workqueueProvider) NewWorkDurationMetric(n string) workqueue.HistogramMetric {
	return wqWork.WithLabelValues(n)
}
func (workqueueProvider) NewUnfinishedWorkSecondsMetric(n string) workqueue.SettableGaugeMetric {
	return wqUnfinished.WithLabelValues(n)
}
func (workqueueProvider) NewLongestRunningProcessorSecondsMetric(n string) workqueue.SettableGaugeMetric {
	return wqLongest.WithLabelValues(n)
}
func (workqueueProvider) NewRetriesMetric(n string) workqueue.CounterMetric {
	return wqRetries.WithLabelValues(n)
}

func registerWorkqueue() {
	Registry.MustRegister(wqDepth, wqAdds, wqLatency, wqWork, wqUnfinished, wqLongest, wqRetries)
	workqueue.SetProvider(workqueueProvider{})
}

// REST client metrics, with the names Kubernetes components use.
var (
	restRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rest_client_requests_total", Help: "HTTP requests to the API server, by status code, method and host.",
	}, []string{"code", "method", "host"})
	restLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rest_client_request_duration_seconds", Help: "Request latency to the API server, by verb.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"verb"})
	restRateLimiter = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rest_client_rate_limiter_duration_seconds", Help: "Time requests waited for the client-side rate limiter, by verb.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"verb"})
)

type resultAdapter struct{}

func (resultAdapter) Increment(_ context.Context, code, method, host string) {
	restRequests.WithLabelValues(code, method, host).Inc()
}

type latencyAdapter struct{ h *prometheus.HistogramVec }

func (l latencyAdapter) Observe(_ context.Context, verb string, _ url.URL, d time.Duration) {
	l.h.WithLabelValues(verb).Observe(d.Seconds())
}

func registerRESTClient() {
	Registry.MustRegister(restRequests, restLatency, restRateLimiter)
	clientmetrics.Register(clientmetrics.RegisterOpts{
		RequestResult:      resultAdapter{},
		RequestLatency:     latencyAdapter{restLatency},
		RateLimiterLatency: latencyAdapter{restRateLimiter},
	})
}

// State is a snapshot of the Dask resources, taken at scrape time.
type State struct {
	ClustersByPhase map[string]int
	JobsByStatus    map[string]int
	WorkerGroups    int
	WorkersDesired  int
	WorkersReady    int
	Autoscalers     int
}

// StateSource gives the current State, reading informer caches.
type StateSource interface {
	DaskState() State
}

var (
	descClusters   = prometheus.NewDesc("dask_operator_clusters", "DaskClusters, by phase.", []string{"phase"}, nil)
	descJobs       = prometheus.NewDesc("dask_operator_jobs", "DaskJobs, by status.", []string{"status"}, nil)
	descGroups     = prometheus.NewDesc("dask_operator_worker_groups", "DaskWorkerGroups.", nil, nil)
	descDesired    = prometheus.NewDesc("dask_operator_workers_desired", "Worker Pods wanted, over all groups.", nil, nil)
	descReady      = prometheus.NewDesc("dask_operator_workers_ready", "Ready worker Pods, over all groups.", nil, nil)
	descAutoscaler = prometheus.NewDesc("dask_operator_autoscalers", "DaskAutoscalers.", nil, nil)
)

type stateCollector struct{ src StateSource }

// RegisterState serves the dask_operator_* gauges from src.
func RegisterState(src StateSource) error {
	return Registry.Register(stateCollector{src})
}

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descClusters, descJobs, descGroups, descDesired, descReady, descAutoscaler} {
		ch <- d
	}
}

func (s stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := s.src.DaskState()
	for phase, n := range st.ClustersByPhase {
		ch <- prometheus.MustNewConstMetric(descClusters, prometheus.GaugeValue, float64(n), phase)
	}
	for status, n := range st.JobsByStatus {
		ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(n), status)
	}
	ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(st.WorkerGroups))
	ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(st.WorkersDesired))
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(st.WorkersReady))
	ch <- prometheus.MustNewConstMetric(descAutoscaler, prometheus.GaugeValue, float64(st.Autoscalers))
}

// ResultLabel is "ok" or "error".
func ResultLabel(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
