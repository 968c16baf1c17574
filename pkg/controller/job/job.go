package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// DefaultOnFailureBackoffLimit is how many runner container restarts a job
// with restartPolicy OnFailure and no backoffLimit survives.
const DefaultOnFailureBackoffLimit = 6

// jobBackoffLimit: unset means 6 restarts with OnFailure (instead of crash
// looping forever) and no retry with Never (a failed runner fails the job,
// as with the Python operator).
func jobBackoffLimit(job *daskv1.DaskJob, policy corev1.RestartPolicy) int32 {
	if job.Spec.BackoffLimit != nil {
		return *job.Spec.BackoffLimit
	}
	if policy == corev1.RestartPolicyNever {
		return 0
	}
	return DefaultOnFailureBackoffLimit
}

func jobExpectationKey(key string) string { return "DaskJob/" + key }

func jobFinished(s daskv1.JobStatus) bool {
	return s == daskv1.JobSuccessful || s == daskv1.JobFailed
}

func (c *Controller) syncJob(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	job, err := c.Caches.Job(ns, name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	job = c.jobWrites.Newest(key, job)
	if job.DeletionTimestamp != nil {
		return 0, nil
	}
	if daskv1.ManagedElsewhere(job.Spec.ManagedBy) {
		// Another controller runs it (MultiKueue, on a worker cluster, and
		// mirrors its status here): only its Workload is made here.
		return 0, c.queueManaged(ctx, job)
	}
	status := job.Status.DeepCopy()
	status.ObservedGeneration = job.Generation
	status.ClusterName = resources.JobClusterName(job.Name)
	status.JobRunnerPodName = resources.RunnerPodName(job.Name)
	if status.JobStatus == "" {
		status.JobStatus = daskv1.JobCreated
	}

	requeue, syncErr := c.reconcileJob(ctx, key, job, status)
	if msg, ok := controller.ConflictIn(syncErr); ok {
		c.WarnOnce(job, job.Status.Conditions, daskv1.ConditionResourcesCreated, daskv1.ReasonNameConflict, msg)
		controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionResourcesCreated, metav1.ConditionFalse, daskv1.ReasonNameConflict, msg)
	} else if msg, ok := controller.FailedCreateIn(syncErr); ok {
		controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionResourcesCreated, metav1.ConditionFalse, daskv1.ReasonFailedCreate, msg)
	} else if syncErr == nil && !jobFinished(status.JobStatus) && status.JobStatus != daskv1.JobSuspended {
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionResourcesCreated)
	}
	// A job's status is written at once: it changes by steps users wait on.
	if _, err := controller.WriteStatus(ctx, c.Base, controller.StatusWrite[*daskv1.DaskJob]{
		Kind: "DaskJob", Key: key, Obj: job, Same: equality.Semantic.DeepEqual(&job.Status, status),
		Update: func(ctx context.Context) (*daskv1.DaskJob, error) {
			updated := job.DeepCopy()
			updated.Status = *status
			return c.Dask.KubernetesV1().DaskJobs(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		},
		Writes: c.jobWrites,
	}); err != nil {
		return 0, errors.Join(syncErr, err)
	}
	return requeue, syncErr
}

func (c *Controller) reconcileJob(ctx context.Context, key string, job *daskv1.DaskJob, status *daskv1.DaskJobStatus) (time.Duration, error) {
	now := c.Now()
	if jobFinished(status.JobStatus) {
		if err := errors.Join(c.finishWorkload(ctx, job, status), c.deleteJobCluster(ctx, job)); err != nil {
			return 0, err
		}
		return c.jobTTL(ctx, job, status, now)
	}

	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		return 0, c.stopJob(ctx, job, status, daskv1.ReasonSuspended, "spec.suspend is true")
	}
	var placed admission
	if queued(job) {
		a, err := c.admit(ctx, job)
		if err != nil {
			return 0, err
		}
		if a.Held {
			return 0, c.holdJob(ctx, job, status, a)
		}
		placed = a
		controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionAdmitted, metav1.ConditionTrue, a.Reason, a.Message)
	}
	if cond := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionSuspended); cond != nil && cond.Status == metav1.ConditionTrue {
		msg := "spec.suspend is false"
		if queued(job) {
			msg = placed.Message
		}
		controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionSuspended, metav1.ConditionFalse, daskv1.ReasonResumed, msg)
		c.Recorder.Event(job, corev1.EventTypeNormal, daskv1.ReasonResumed, "Job resumed: "+msg)
		status.JobStatus = daskv1.JobCreated
	}

	// The deadline counts from the job's start (its creation or its last
	// resume), like a Kubernetes Job's, whether or not the runner ever
	// started: a runner that is never scheduled must not keep the job and its
	// cluster forever.
	deadline, hasDeadline := jobDeadline(job, status)
	if hasDeadline && !now.Before(deadline) {
		return 0, c.failJob(ctx, job, status, daskv1.ReasonDeadlineExceeded,
			fmt.Sprintf("the job was active longer than activeDeadlineSeconds (%ds)", *job.Spec.ActiveDeadlineSeconds), true)
	}
	requeue, err := c.reconcileActiveJob(ctx, key, job, status, now, placed)
	requeue = controller.Soonest(requeue, c.created.Stale(controller.CreatedKey("DaskCluster", job.Namespace, resources.JobClusterName(job.Name))))
	if hasDeadline && !jobFinished(status.JobStatus) {
		requeue = controller.Soonest(requeue, deadline.Sub(now)+100*time.Millisecond)
	}
	return requeue, err
}

// jobDeadline is when an active job with activeDeadlineSeconds fails: that
// long after it was created or, if it was suspended, last resumed.
func jobDeadline(job *daskv1.DaskJob, status *daskv1.DaskJobStatus) (time.Time, bool) {
	if job.Spec.ActiveDeadlineSeconds == nil {
		return time.Time{}, false
	}
	start := job.CreationTimestamp.Time
	if cond := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionSuspended); cond != nil && cond.Status == metav1.ConditionFalse &&
		cond.LastTransitionTime.After(start) {
		start = cond.LastTransitionTime.Time
	}
	return start.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second), true
}

// reconcileActiveJob runs a job that is neither finished nor suspended: its
// cluster, then its runner, whose phase gives the job's.
func (c *Controller) reconcileActiveJob(ctx context.Context, key string, job *daskv1.DaskJob, status *daskv1.DaskJobStatus, now time.Time, placed admission) (_ time.Duration, err error) {
	// Passing labels and annotations on may fail (RBAC, a conflict): that is
	// reported and retried, but never stops the job's own progress.
	var metaErr error
	defer func() { err = errors.Join(err, metaErr) }()

	cluster, err := c.ensureJobCluster(ctx, job, placed)
	if cluster == nil {
		return 0, err
	}
	metaErr = err
	expKey := jobExpectationKey(key)
	if !c.expect.Satisfied(expKey) {
		// The runner Pod we created (or deleted) is not in the cache yet;
		// should its event be lost, look again when the expectation expires.
		return c.expect.Remaining(expKey), nil
	}
	runner, err := c.Caches.Pod(job.Namespace, resources.RunnerPodName(job.Name))
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	if runner != nil && !controller.OwnedBy(runner, job) {
		return 0, controller.NameConflict("Pod", runner.Name, "DaskJob")
	}
	desired := resources.RunnerPod(job, cluster, c.Opts.ClusterDomain)
	placed.runner.Apply(&desired.Spec)
	limit := jobBackoffLimit(job, desired.Spec.RestartPolicy)
	if runner != nil && runner.DeletionTimestamp == nil {
		// The runner says which attempt it is, should the status write
		// that followed its creation have been lost.
		if n, err := strconv.Atoi(runner.Annotations[resources.AnnotationAttempt]); err == nil && int32(n) > status.Attempts {
			status.Attempts = int32(n)
		}
	}

	if runner == nil || runner.DeletionTimestamp != nil {
		if runner != nil {
			return 0, nil // wait until it is gone
		}
		if status.Attempts > status.Failed {
			// The current attempt's runner vanished before it ended: a
			// failure, retried within backoffLimit. (After a counted
			// failure, Attempts == Failed and the next attempt is due.)
			status.Failed++
			if status.Failed > limit {
				return 0, c.failJob(ctx, job, status, daskv1.ReasonBackoffLimitExceeded,
					fmt.Sprintf("runner Pod %s was deleted and backoffLimit (%d) is exhausted", desired.Name, limit), false)
			}
			c.Recorder.Eventf(job, corev1.EventTypeWarning, daskv1.ReasonRunnerLost, "Runner Pod %s disappeared; starting attempt %d", desired.Name, status.Attempts+1)
		}
		return 0, c.createRunner(ctx, expKey, job, desired, status)
	}

	if patch := resources.MetadataPatch(runner, desired); patch != nil && !controller.PodTerminal(runner) {
		if _, err := c.Kube.CoreV1().Pods(job.Namespace).Patch(ctx, runner.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			metaErr = errors.Join(metaErr, fmt.Errorf("pass labels and annotations on to runner Pod %s: %w", runner.Name, err))
		}
	}
	restarts := controller.Restarts(runner)
	switch runner.Status.Phase {
	case corev1.PodSucceeded:
		status.JobStatus = daskv1.JobSuccessful
		status.EndTime = timePtr(now)
		controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionComplete, metav1.ConditionTrue, daskv1.ReasonJobSucceeded,
			fmt.Sprintf("runner Pod %s succeeded", runner.Name))
		c.Recorder.Eventf(job, corev1.EventTypeNormal, daskv1.ReasonJobSucceeded, "Runner Pod %s succeeded; deleting the cluster", runner.Name)
		klog.InfoS("Job succeeded", "daskjob", klog.KObj(job))
		if err := c.deleteJobCluster(ctx, job); err != nil {
			return 0, err
		}
		return c.jobTTL(ctx, job, status, now)
	case corev1.PodFailed:
		status.Failed++
		if status.Failed > limit {
			reason, msg := daskv1.ReasonJobFailed, fmt.Sprintf("runner Pod %s failed: %s", runner.Name, controller.PodFailureMessage(runner))
			if limit > 0 {
				reason, msg = daskv1.ReasonBackoffLimitExceeded, fmt.Sprintf("%s; backoffLimit (%d) is exhausted", msg, limit)
			}
			return 0, c.failJob(ctx, job, status, reason, msg, false)
		}
		c.Recorder.Eventf(job, corev1.EventTypeWarning, daskv1.ReasonRunnerRetry, "Runner Pod %s failed (%d of %d allowed failures); retrying",
			runner.Name, status.Failed, limit)
		// Delete it and create the next attempt once it is gone.
		if err := c.deleteJobRunner(ctx, job); err != nil {
			status.Failed--
			return 0, err
		}
		status.JobStatus = daskv1.JobClusterCreated
		return 0, nil
	case corev1.PodRunning:
		if desired.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && restarts > limit {
			status.Failed = restarts
			return 0, c.failJob(ctx, job, status, daskv1.ReasonBackoffLimitExceeded,
				fmt.Sprintf("runner Pod %s restarted %d times, more than backoffLimit (%d)", runner.Name, restarts, limit), true)
		}
		if status.JobStatus != daskv1.JobRunning {
			c.Recorder.Eventf(job, corev1.EventTypeNormal, daskv1.ReasonJobStarted, "Runner Pod %s is running", runner.Name)
		}
		status.JobStatus = daskv1.JobRunning
		if status.StartTime == nil {
			status.StartTime = timePtr(now)
		}
	default:
		if status.JobStatus == daskv1.JobCreated {
			status.JobStatus = daskv1.JobClusterCreated
		}
	}
	return 0, nil
}

// jobOwner is a job as the owner of the children it creates.
func jobOwner(j *daskv1.DaskJob) controller.ChildOwner {
	return controller.ChildOwner{Obj: j, Kind: "DaskJob", Conditions: j.Status.Conditions}
}

func (c *Controller) createRunner(ctx context.Context, expKey string, job *daskv1.DaskJob, pod *corev1.Pod, status *daskv1.DaskJobStatus) error {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[resources.AnnotationAttempt] = strconv.Itoa(int(status.Attempts + 1))
	c.expect.ExpectCreations(expKey, pod.Name)
	_, err := c.Kube.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.expect.CreationObserved(expKey, pod.Name)
		if apierrors.IsAlreadyExists(err) {
			return controller.AlreadyExists(ctx, job, "DaskJob", "Pod", pod.Name, c.Kube.CoreV1().Pods(job.Namespace).Get)
		}
		if controller.NamespaceTerminating(err) {
			return nil // everything in the namespace goes: nothing to retry or report
		}
		if apierrors.IsInvalid(err) {
			// The job fails; its one Warning says why.
			return c.failJob(ctx, job, status, daskv1.ReasonFailedCreate, fmt.Sprintf("create Pod %s: %v", pod.Name, err), true)
		}
		return c.CreateFailed(jobOwner(job), "Pod", pod.Name, err)
	}
	status.Attempts++
	if status.JobStatus == daskv1.JobCreated {
		status.JobStatus = daskv1.JobClusterCreated
	}
	klog.InfoS("Created runner Pod", "daskjob", klog.KObj(job), "pod", pod.Name, "attempt", status.Attempts)
	return nil
}

// failJob ends the job as Failed; the cluster goes, and the runner too when
// it may still be running (deadline, restarts).
func (c *Controller) failJob(ctx context.Context, job *daskv1.DaskJob, status *daskv1.DaskJobStatus, reason, msg string, stopRunner bool) error {
	status.JobStatus = daskv1.JobFailed
	status.EndTime = timePtr(c.Now())
	controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionFailed, metav1.ConditionTrue, reason, msg)
	c.Recorder.Event(job, corev1.EventTypeWarning, reason, msg)
	klog.InfoS("Job failed", "daskjob", klog.KObj(job), "reason", reason, "message", msg)
	var errs []error
	if stopRunner {
		errs = append(errs, c.deleteJobRunner(ctx, job))
	}
	errs = append(errs, c.deleteJobCluster(ctx, job))
	return errors.Join(errs...)
}

// jobTTL deletes a finished job once ttlSecondsAfterFinished has passed.
func (c *Controller) jobTTL(ctx context.Context, job *daskv1.DaskJob, status *daskv1.DaskJobStatus, now time.Time) (time.Duration, error) {
	if job.Spec.TTLSecondsAfterFinished == nil || status.EndTime == nil {
		return 0, nil
	}
	expiry := status.EndTime.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	if now.Before(expiry) {
		return expiry.Sub(now) + 100*time.Millisecond, nil
	}
	uid := job.UID
	background := metav1.DeletePropagationBackground
	err := c.Dask.KubernetesV1().DaskJobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &background,
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	klog.InfoS("Deleted finished job after its TTL", "daskjob", klog.KObj(job))
	c.Recorder.Eventf(job, corev1.EventTypeNormal, daskv1.ReasonTTLExpired, "Deleted %ds after it finished (ttlSecondsAfterFinished)", *job.Spec.TTLSecondsAfterFinished)
	return 0, nil
}

func (c *Controller) ensureJobCluster(ctx context.Context, job *daskv1.DaskJob, placed admission) (*daskv1.DaskCluster, error) {
	desired := resources.JobCluster(job)
	// Where Kueue admitted the job: its flavors' nodes.
	placed.sched.Apply(&desired.Spec.Scheduler.Spec)
	placed.workers.Apply(&desired.Spec.Worker.Spec)
	existing, err := c.Caches.Cluster(job.Namespace, desired.Name)
	if apierrors.IsNotFound(err) {
		if created, ok := controller.CreatedAs[*daskv1.DaskCluster](c.created, "DaskCluster", job.Namespace, desired.Name); ok {
			existing, err = created, nil
		}
	}
	if err == nil {
		if !controller.OwnedBy(existing, job) {
			return nil, controller.NameConflict("DaskCluster", desired.Name, "DaskJob")
		}
		// Labels and annotations added to or removed from the job reach it.
		if patch := resources.MetadataPatch(existing, desired); patch != nil && existing.DeletionTimestamp == nil {
			if _, err := c.Dask.KubernetesV1().DaskClusters(job.Namespace).Patch(ctx, existing.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return existing, fmt.Errorf("pass labels and annotations on to DaskCluster %s: %w", existing.Name, err)
			}
		}
		return existing, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	return controller.CreateChild(ctx, c.Base, c.created, jobOwner(job), "DaskCluster", desired,
		c.Dask.KubernetesV1().DaskClusters(job.Namespace).Create, c.Dask.KubernetesV1().DaskClusters(job.Namespace).Get)
}

func (c *Controller) deleteJobCluster(ctx context.Context, job *daskv1.DaskJob) error {
	cluster, err := c.Caches.Cluster(job.Namespace, resources.JobClusterName(job.Name))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !controller.OwnedBy(cluster, job) || cluster.DeletionTimestamp != nil {
		return nil
	}
	uid := cluster.UID
	background := metav1.DeletePropagationBackground
	err = c.Dask.KubernetesV1().DaskClusters(job.Namespace).Delete(ctx, cluster.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &background,
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	c.Recorder.Eventf(job, corev1.EventTypeNormal, daskv1.ReasonClusterDeleted, "Deleted DaskCluster %s", cluster.Name)
	return nil
}

func (c *Controller) deleteJobRunner(ctx context.Context, job *daskv1.DaskJob) error {
	pod, err := c.Caches.Pod(job.Namespace, resources.RunnerPodName(job.Name))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !controller.OwnedBy(pod, job) || pod.DeletionTimestamp != nil {
		return nil
	}
	expKey := jobExpectationKey(job.Namespace + "/" + job.Name)
	c.expect.ExpectDeletions(expKey, pod.Name)
	uid := pod.UID
	err = c.Kube.CoreV1().Pods(job.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil {
		c.expect.DeletionObserved(expKey, pod.Name)
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.Truncate(time.Second))
	return &mt
}

// stopJob deletes a job's runner and cluster and marks it suspended, for
// spec.suspend or while Kueue holds it (reason and msg say which). A pause
// is not a failure: the attempt it interrupts is not counted, and resuming
// starts the next one without using a retry.
func (c *Controller) stopJob(ctx context.Context, job *daskv1.DaskJob, status *daskv1.DaskJobStatus, reason, msg string) error {
	if err := errors.Join(c.deleteJobRunner(ctx, job), c.deleteJobCluster(ctx, job)); err != nil {
		return err
	}
	status.Attempts = status.Failed
	if cond := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionSuspended); status.JobStatus != daskv1.JobSuspended ||
		cond == nil || cond.Reason != reason {
		if reason == daskv1.ReasonSuspended {
			c.Recorder.Event(job, corev1.EventTypeNormal, reason, "Job suspended: its runner Pod and cluster are deleted until spec.suspend is false")
		} else if reason == daskv1.ReasonKueueNotInstalled {
			c.Recorder.Event(job, corev1.EventTypeWarning, reason, "Job cannot be queued: "+msg)
		} else {
			c.Recorder.Event(job, corev1.EventTypeNormal, reason, "Job waits for Kueue: "+msg)
		}
	}
	status.JobStatus = daskv1.JobSuspended
	status.StartTime = nil
	controller.SetCondition(&status.Conditions, job.Generation, daskv1.ConditionSuspended, metav1.ConditionTrue, reason, msg)
	return nil
}
