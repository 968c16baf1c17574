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

// admission is what Kueue decided for a queued job.
type admission struct {
	// hold: the job must not run (reason and message say why).
	hold          bool
	reason, msg   string
	workload      *kueue.Workload
	runner, sched kueue.Flavor
	workers       kueue.Flavor
}

// queued tells a job that waits in a Kueue queue.
func queued(job *daskv1.DaskJob) bool { return job.Labels[kueue.LabelQueueName] != "" }

// admit finds or creates a queued job's Workload and tells whether the job
// may run, and where.
func (c *Controller) admit(ctx context.Context, job *daskv1.DaskJob) (admission, error) {
	kc := c.Caches.Kueue
	if kc == nil {
		return admission{hold: true, reason: daskv1.ReasonKueueNotInstalled, msg: fmt.Sprintf(
			"labelled %s=%s, but the API server serves no Kueue Workloads (%s): install Kueue and restart the operator, or remove the label",
			kueue.LabelQueueName, job.Labels[kueue.LabelQueueName], kueue.GroupVersion)}, nil
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
				return admission{hold: true, reason: daskv1.ReasonQueued, msg: fmt.Sprintf("waiting for its Workload %s", prebuilt)}, nil
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
			return admission{hold: true, reason: daskv1.ReasonQueued, msg: fmt.Sprintf("Workload %s created; waiting for the cache", desired.Name)}, nil
		}
		if err != nil {
			return admission{}, fmt.Errorf("create Workload %s: %w", desired.Name, err)
		}
		klog.InfoS("Created Workload", "daskjob", klog.KObj(job), "workload", created.Name, "queue", desired.Spec.QueueName)
		c.Recorder.Eventf(job, corev1.EventTypeNormal, daskv1.ReasonWorkloadCreated, "Created Workload %s in queue %s", created.Name, desired.Spec.QueueName)
		return admission{hold: true, reason: daskv1.ReasonQueued, workload: created,
			msg: fmt.Sprintf("Workload %s waits in queue %s", created.Name, desired.Spec.QueueName)}, nil
	}
	if ev := wl.Evicted(); ev != nil {
		reason := daskv1.ReasonEvicted
		if ev.Reason == kueue.ReasonPreempted {
			reason = kueue.ReasonPreempted
		}
		return admission{hold: true, reason: reason, workload: wl,
			msg: fmt.Sprintf("Workload %s was evicted by Kueue (%s: %s); the job waits to be admitted again", wl.Name, ev.Reason, ev.Message)}, nil
	}
	if !wl.IsAdmitted() {
		return admission{hold: true, reason: daskv1.ReasonQueued, workload: wl,
			msg: fmt.Sprintf("Workload %s waits in queue %s: %s", wl.Name, wl.Spec.QueueName, wl.PendingMessage())}, nil
	}
	a := admission{workload: wl, reason: daskv1.ReasonAdmitted,
		msg: fmt.Sprintf("Workload %s admitted by ClusterQueue %s", wl.Name, wl.Status.Admission.ClusterQueue)}
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
	w := &kueue.Workload{
		ObjectMeta: metav1.ObjectMeta{
			Name:      kueue.Name("DaskJob", job.Name, string(job.UID)),
			Namespace: job.Namespace,
			Labels:    map[string]string{kueue.LabelOwnerKind: "DaskJob"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job,
				daskv1.SchemeGroupVersion.WithKind("DaskJob"))},
		},
		Spec: kueue.WorkloadSpec{PodSets: sets, QueueName: job.Labels[kueue.LabelQueueName]},
	}
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
	wl, u, err := c.Caches.Kueue.WorkloadOf(job.Namespace, job.UID)
	if err != nil || wl == nil || !wl.HasQuotaReservation() {
		return err
	}
	ev := wl.Evicted()
	if ev == nil {
		return nil
	}
	if err := kueue.ClearAdmission(u, ev); err != nil {
		return err
	}
	if err := c.Caches.Kueue.UpdateStatus(ctx, u); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("give the quota of Workload %s back: %w", wl.Name, err)
	}
	klog.InfoS("Gave an evicted Workload's quota back", "daskjob", klog.KObj(job), "workload", wl.Name)
	return nil
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
	err := c.stopJob(ctx, job, status, a.reason, a.msg)
	controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionAdmitted, metav1.ConditionFalse, a.reason, a.msg)
	if err != nil {
		return err
	}
	if a.workload != nil && a.workload.Evicted() != nil {
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
