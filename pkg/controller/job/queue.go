package job

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/kueue"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Kueue: a DaskJob labelled kueue.x-k8s.io/queue-name waits in that queue.
// Its Workload (runner, scheduler and workers as pod sets) is created and
// owned by the job; nothing runs until Kueue admits it; an eviction stops
// it as spec.suspend does (not a failure, no retry used) and gives the
// quota back once its Pods are gone; the end of the job finishes the
// Workload.

// admission is what Kueue decided for a queued job, and where its Pods go.
type admission struct {
	controller.Admission
	runner, sched kueue.Flavor
	workers       kueue.Flavor
}

// held is an admission that keeps the job from running.
func held(reason, msg string, wl *kueue.Workload) admission {
	return admission{Admission: controller.Admission{Queued: true, Held: true, Reason: reason, Message: msg, Workload: wl}}
}

// queued tells a job that waits in a Kueue queue.
func queued(job *daskv1.DaskJob) bool { return job.Labels[kueue.LabelQueueName] != "" }

// admit finds or creates a queued job's Workload and tells whether the job
// may run, and where.
func (c *Controller) admit(ctx context.Context, job *daskv1.DaskJob) (admission, error) {
	kc := c.Caches.Kueue
	if kc == nil {
		return admission{Admission: controller.NotInstalled(job.Labels[kueue.LabelQueueName])}, nil
	}
	wl, _, err := kc.WorkloadOf(job.Namespace, job.UID)
	if err != nil {
		return admission{}, err
	}
	if prebuilt := job.Labels[kueue.LabelPrebuiltWorkload]; wl == nil && prebuilt != "" {
		// MultiKueue dispatched this job here with its Workload.
		ref := *metav1.NewControllerRef(job, daskv1.SchemeGroupVersion.WithKind("DaskJob"))
		if wl, err = kc.Adopt(ctx, job.Namespace, prebuilt, ref, "DaskJob"); err != nil {
			if apierrors.IsNotFound(err) {
				return held(daskv1.ReasonQueued, fmt.Sprintf("waiting for its Workload %s", prebuilt), nil), nil
			}
			return admission{}, err
		}
	}
	if wl == nil {
		desired, err := c.desiredWorkload(ctx, job)
		if err != nil {
			return admission{}, err
		}
		created, err := kc.Create(ctx, desired)
		if apierrors.IsAlreadyExists(err) {
			return held(daskv1.ReasonQueued, fmt.Sprintf("Workload %s created; waiting for the cache", desired.Name), nil), nil
		}
		if err != nil {
			return admission{}, fmt.Errorf("create Workload %s: %w", desired.Name, err)
		}
		klog.InfoS("Created Workload", "daskjob", klog.KObj(job), "workload", created.Name, "queue", desired.Spec.QueueName)
		c.Recorder.Eventf(job, corev1.EventTypeNormal, daskv1.ReasonWorkloadCreated, "Created Workload %s in queue %s", created.Name, desired.Spec.QueueName)
		return held(daskv1.ReasonQueued, fmt.Sprintf("Workload %s waits in queue %s", created.Name, desired.Spec.QueueName), created), nil
	}
	a := admission{Admission: controller.Decide(wl.Spec.QueueName, wl, "job")}
	if a.Held {
		return a, nil
	}
	for name, f := range map[string]*kueue.Flavor{kueue.PodSetRunner: &a.runner, kueue.PodSetScheduler: &a.sched, kueue.PodSetWorkers: &a.workers} {
		if as, ok := wl.Assignment(name); ok {
			if *f, err = kc.Placement(as); err != nil {
				return admission{}, fmt.Errorf("Workload %s: %w", wl.Name, err)
			}
		}
	}
	return a, nil
}

// desiredWorkload is the Workload of a job: its runner, its cluster's
// scheduler and its workers, with the job's priority.
func (c *Controller) desiredWorkload(ctx context.Context, job *daskv1.DaskJob) (*kueue.Workload, error) {
	cluster := resources.JobCluster(job)
	runner := resources.RunnerPod(job, cluster, c.Opts.ClusterDomain)
	sets := []kueue.PodSet{
		{Name: kueue.PodSetRunner, Count: 1, Template: corev1.PodTemplateSpec{Spec: runner.Spec}},
		{Name: kueue.PodSetScheduler, Count: 1, Template: corev1.PodTemplateSpec{Spec: cluster.Spec.Scheduler.Spec}},
	}
	if n := resources.Replicas(&cluster.Spec.Worker); n > 0 {
		sets = append(sets, kueue.PodSet{Name: kueue.PodSetWorkers, Count: n, Template: corev1.PodTemplateSpec{Spec: cluster.Spec.Worker.Spec}})
	}
	w := controller.NewWorkload(job, "DaskJob", sets)
	if err := c.SetWorkloadPriority(ctx, &w.Spec, job.Labels[kueue.LabelPriorityClass], runner.Spec.PriorityClassName); err != nil {
		return nil, err
	}
	return w, nil
}

// releaseEvicted gives an evicted job's quota back once its runner, its
// cluster and the cluster's Pods are gone.
func (c *Controller) releaseEvicted(ctx context.Context, job *daskv1.DaskJob) error {
	if _, err := c.Caches.Pod(job.Namespace, resources.RunnerPodName(job.Name)); !apierrors.IsNotFound(err) {
		return err // still there (or a cache error)
	}
	if _, err := c.Caches.Cluster(job.Namespace, resources.JobClusterName(job.Name)); !apierrors.IsNotFound(err) {
		return err
	}
	if len(c.Caches.ClusterPods(job.Namespace, resources.JobClusterName(job.Name))) > 0 {
		return nil // the cluster's Pods are still being deleted; their events bring us back
	}
	return c.GiveQuotaBack(ctx, job, "DaskJob")
}

// finishWorkload marks a finished job's Workload Finished, which frees its
// quota.
func (c *Controller) finishWorkload(ctx context.Context, job *daskv1.DaskJob, status *daskv1.DaskJobStatus) error {
	if !queued(job) || c.Caches.Kueue == nil {
		return nil
	}
	wl, u, err := c.Caches.Kueue.WorkloadOf(job.Namespace, job.UID)
	if err != nil || wl == nil || wl.IsFinished() {
		return err
	}
	reason, msg := kueue.ReasonSucceeded, "DaskJob succeeded"
	if status.JobStatus == daskv1.JobFailed {
		reason, msg = kueue.ReasonFailed, "DaskJob failed"
		if c := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionFailed); c != nil {
			msg = "DaskJob failed: " + c.Message
		}
	}
	if err := kueue.SetCondition(u, metav1.Condition{Type: kueue.ConditionFinished, Status: metav1.ConditionTrue, Reason: reason, Message: msg}); err != nil {
		return err
	}
	if err := c.Caches.Kueue.UpdateStatus(ctx, u); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finish Workload %s: %w", wl.Name, err)
	}
	return nil
}

// holdJob keeps a queued job stopped: no runner, no cluster, as spec.suspend
// does; an evicted job gives its quota back once everything is gone.
func (c *Controller) holdJob(ctx context.Context, job *daskv1.DaskJob, status *daskv1.DaskJobStatus, a admission) error {
	err := c.stopJob(ctx, job, status, a.Reason, a.Message)
	controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionAdmitted, metav1.ConditionFalse, a.Reason, a.Message)
	if err != nil {
		return err
	}
	if a.Workload != nil && a.Workload.Evicted() != nil {
		return c.releaseEvicted(ctx, job)
	}
	return nil
}

// queueManaged makes the Workload of a queued job that another controller
// manages (spec.managedBy): MultiKueue admits it and dispatches the job to
// a worker cluster, whose status it mirrors back. Nothing else is done.
func (c *Controller) queueManaged(ctx context.Context, job *daskv1.DaskJob) error {
	if !queued(job) || c.Caches.Kueue == nil {
		return nil
	}
	_, err := c.admit(ctx, job)
	return err
}
