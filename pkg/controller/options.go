package controller

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/dask-operator/dask-operator/pkg/daskapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Options configure the controllers. Zero values take the defaults below.
type Options struct {
	// Namespaces to watch; empty watches all.
	Namespaces []string
	// Workers is the number of workers per queue (default 5).
	Workers int
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
	// Resolver reaches Dask schedulers. Required.
	Resolver daskapi.Resolver
	// ResyncPeriod of the informers (default 10 minutes): a safety net only.
	ResyncPeriod time.Duration
	// Events is where events are sent (default: the kube client's). A
	// client of its own has a rate limit of its own, so that events never
	// wait in line with the creation of Pods.
	Events typedcorev1.EventsGetter

	// MaxPodOpsPerSync bounds the Pods one sync creates or deletes (default 500).
	MaxPodOpsPerSync int
	// WorkerBatchDelay is the pause between creation batches of one group
	// (default 0). DASK_KUBERNETES__CONTROLLER__WORKER_ALLOCATION__DELAY sets it.
	WorkerBatchDelay time.Duration
	// RetireTimeout bounds one retire_workers call (default 2 minutes): Dask
	// moves the workers' data before it answers.
	RetireTimeout time.Duration
	// RetireFallbackAfter is how long the scheduler may be unreachable during
	// a scale-down before running workers are deleted without retiring them
	// (newest first). Negative never deletes them; zero takes the default, 30s.
	RetireFallbackAfter time.Duration
	// SchedulerPollInterval is how often idle clusters and autoscalers ask
	// their scheduler (default 5s).
	SchedulerPollInterval time.Duration
	// AutoscalerCooldown is the pause after an autoscaler changed the worker
	// count (default 15s).
	AutoscalerCooldown time.Duration
	// ScaleDownStabilization is how long the scheduler's target must stay
	// lower before an autoscaler shrinks a group (default 60s).
	ScaleDownStabilization time.Duration
	// Dynamic reaches Kueue's API. When set and the API server serves
	// Kueue's Workloads, objects labelled kueue.x-k8s.io/queue-name wait in
	// Kueue's queues; nil turns the Kueue integration off.
	Dynamic dynamic.Interface
	// SchedulerCallTimeout bounds the short scheduler calls (default 5s).
	SchedulerCallTimeout time.Duration
}

// Environment variables of the Python operator that the Go operator honours.
const (
	EnvBatchSize  = "DASK_KUBERNETES__CONTROLLER__WORKER_ALLOCATION__BATCH_SIZE"
	EnvBatchDelay = "DASK_KUBERNETES__CONTROLLER__WORKER_ALLOCATION__DELAY"
)

// OptionsFromEnv applies the Python operator's worker allocation variables:
// the batch size caps the Pods created per sync, the delay (seconds) paces
// the batches.
func (o *Options) OptionsFromEnv() error {
	if v := os.Getenv(EnvBatchSize); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%s=%q: want a positive integer", EnvBatchSize, v)
		}
		o.MaxPodOpsPerSync = n
	}
	if v := os.Getenv(EnvBatchDelay); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("%s=%q: want a number of seconds", EnvBatchDelay, v)
		}
		o.WorkerBatchDelay = time.Duration(f * float64(time.Second))
	}
	return nil
}

func (o *Options) Defaults() {
	if o.Workers <= 0 {
		o.Workers = 5
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.ResyncPeriod == 0 {
		o.ResyncPeriod = 10 * time.Minute
	}
	if o.MaxPodOpsPerSync <= 0 || o.MaxPodOpsPerSync > 500 {
		o.MaxPodOpsPerSync = 500
	}
	if o.RetireFallbackAfter == 0 {
		o.RetireFallbackAfter = 30 * time.Second
	}
	if o.RetireTimeout <= 0 {
		o.RetireTimeout = 2 * time.Minute
	}
	if o.SchedulerPollInterval <= 0 {
		o.SchedulerPollInterval = 5 * time.Second
	}
	if o.AutoscalerCooldown < 0 {
		o.AutoscalerCooldown = 0
	} else if o.AutoscalerCooldown == 0 {
		o.AutoscalerCooldown = 15 * time.Second
	}
	if o.ScaleDownStabilization < 0 {
		o.ScaleDownStabilization = 0
	} else if o.ScaleDownStabilization == 0 {
		o.ScaleDownStabilization = 60 * time.Second
	}
	if o.SchedulerCallTimeout <= 0 {
		o.SchedulerCallTimeout = 5 * time.Second
	}
}

func ObjResourceVersion(obj any) string {
	if m, ok := obj.(metav1.Object); ok {
		return m.GetResourceVersion()
	}
	return ""
}

func TombstoneAs[T any](obj any) (T, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	v, ok := obj.(T)
	return v, ok
}

// SpamKeyByReason is client-go's event spam key (source, object, type) with
// the reason: each reason of an object has its own budget (25 events, then
// one per 5 minutes), so that frequent events (ScaledUp, ScaledDown) never
// silence a rare one that matters, such as FallbackScaleDown.
func SpamKeyByReason(e *corev1.Event) string {
	return strings.Join([]string{e.Source.Component, e.Source.Host, e.InvolvedObject.Kind, e.InvolvedObject.Namespace,
		e.InvolvedObject.Name, string(e.InvolvedObject.UID), e.InvolvedObject.APIVersion, e.Type, e.Reason}, "/")
}
