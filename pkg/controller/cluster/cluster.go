package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/kueue"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

func (c *Controller) syncCluster(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.Caches.Cluster(ns, name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cached = c.clusterWrites.Newest(key, cached)
	if done, err := c.RemoveKopfFinalizer(ctx, cached); done || err != nil {
		return 0, err
	}
	if cached.DeletionTimestamp != nil {
		return 0, nil
	}
	if daskv1.ManagedElsewhere(cached.Spec.ManagedBy) {
		// Another controller runs it (MultiKueue): only its Workload is
		// made here.
		if controller.QueuedCluster(cached) && c.Caches.Kueue != nil {
			_, err := c.admit(ctx, cached)
			return 0, err
		}
		return 0, nil
	}
	cluster := cached.DeepCopy()
	status := cluster.Status.DeepCopy()
	status.ObservedGeneration = cluster.Generation
	if status.Phase == "" {
		status.Phase = daskv1.DaskClusterCreated
	}

	if err := resources.ValidateClusterName(cluster.Name); err != nil {
		status.Phase = daskv1.DaskClusterError
		c.WarnOnce(cluster, cached.Status.Conditions, daskv1.ConditionResourcesCreated, daskv1.ReasonInvalidName, err.Error())
		controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionResourcesCreated, metav1.ConditionFalse, daskv1.ReasonInvalidName, err.Error())
		_, err := c.writeClusterStatus(ctx, key, cached, status) // a new phase: never held
		return 0, err
	}

	// Kueue (queue.go): a queued cluster runs nothing until admitted.
	adm, err := c.admit(ctx, cluster)
	if err != nil {
		return 0, err
	}
	suspended := resources.Suspended(cluster) || adm.Held
	svc, svcErr := c.ensureSchedulerService(ctx, cluster)
	// A cluster the Python operator made is taken over before its
	// scheduler is managed (takeover.go).
	takingOver, pod, podErr := c.takeOver(ctx, cluster, status)
	switch {
	case takingOver:
	case suspended:
		podErr = c.suspendScheduler(ctx, cluster)
	default:
		pod, podErr = c.ensureSchedulerPod(ctx, cluster, status, adm.scheduler)
	}
	_, groupErr := c.ensureDefaultWorkerGroup(ctx, cluster)
	adoptErr := c.adoptClusterMembers(ctx, cluster)
	createErr := errors.Join(svcErr, podErr, groupErr, adoptErr)

	if adm.Held && adm.Workload != nil && adm.Workload.Evicted() != nil && !resources.Suspended(cluster) {
		if err := c.releaseEvicted(ctx, cluster); err != nil {
			return 0, err
		}
	}
	status = calculateStatus(cluster, status, clusterObserved{
		svc: svc, pod: pod, createErr: createErr, suspended: suspended, admission: adm.Admission,
		groups:     c.Caches.GroupsOf(ns, name),
		workerHash: c.hashes.ClusterWorker(cluster),
		domain:     c.Opts.ClusterDomain,
	})
	c.statusEvents(cluster, status, createErr, suspended)

	// A child used in place of the cache's copy is looked at again once it
	// is no longer remembered, should the cache never see it.
	requeue := c.created.Stale(controller.CreatedKey("Service", ns, resources.SchedulerName(name)),
		controller.CreatedKey("Pod", ns, resources.SchedulerName(name)), controller.CreatedKey("DaskWorkerGroup", ns, resources.DefaultWorkerGroupName(name)))
	if cluster.Spec.IdleTimeout > 0 {
		deleted, idleRequeue := c.checkIdle(ctx, key, cluster, pod, status)
		if deleted {
			return 0, nil
		}
		requeue = controller.Soonest(requeue, idleRequeue)
	} else {
		c.idleChecks.Forget(key)
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionIdleShutdown)
	}

	wait, err := c.writeClusterStatus(ctx, key, cached, status)
	if err != nil {
		return 0, err
	}
	if wait > 0 {
		if createErr != nil && controller.IsPermanent(createErr) {
			return wait, nil
		}
		return controller.Soonest(requeue, wait), createErr
	}
	if createErr != nil && controller.IsPermanent(createErr) {
		// The user must fix the spec; its update event brings us back.
		return 0, nil
	}
	return requeue, createErr
}

// clusterObserved is what a cluster's sync found or made: what its status
// is computed from.
type clusterObserved struct {
	svc       *corev1.Service
	pod       *corev1.Pod
	createErr error
	suspended bool
	// admission is what Kueue decided, for a queued cluster.
	admission controller.Admission
	// groups are the cluster's worker groups; workerHash is the template
	// hash its default group must have taken.
	groups     []*daskv1.DaskWorkerGroup
	workerHash string
	domain     string
}

// calculateStatus computes a cluster's status from what its sync observed
// (as the ReplicaSet controller's calculateStatus), on status, a copy of
// the old one the sync has begun: it acts on nothing, and the events that
// go with a change are statusEvents'. A child we created that the cache
// does not hold yet exists: the retry sees it, and the status need not say
// (a write the next sync would replace).
func calculateStatus(cluster *daskv1.DaskCluster, status *daskv1.DaskClusterStatus, o clusterObserved) *daskv1.DaskClusterStatus {
	gen := cluster.Generation
	if o.createErr != nil && !controller.OnlyCacheLag(o.createErr) {
		reason := daskv1.ReasonFailedCreate
		if controller.IsPermanent(o.createErr) {
			status.Phase = daskv1.DaskClusterError
		}
		if _, ok := controller.ConflictIn(o.createErr); ok {
			reason = daskv1.ReasonNameConflict
		}
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionResourcesCreated, metav1.ConditionFalse, reason, o.createErr.Error())
	} else {
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionResourcesCreated, metav1.ConditionTrue, "AllCreated",
			"scheduler Pod, scheduler Service and default worker group exist")
	}
	if o.createErr == nil || !controller.IsPermanent(o.createErr) {
		status.Phase = clusterPhase(o.svc)
	}
	if a := o.admission; a.Queued {
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionAdmitted, controller.BoolStatus(!a.Held), a.Reason, a.Message)
	} else {
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionAdmitted)
	}
	if o.suspended {
		status.Phase = daskv1.DaskClusterSuspended
		reason, msg := "Suspended", "spec.suspend is true: the scheduler and every worker Pod are deleted; the Service, worker groups and autoscaler are kept"
		if !resources.Suspended(cluster) && o.admission.Held {
			reason, msg = o.admission.Reason, "waiting for Kueue: "+o.admission.Message+"; no scheduler or worker runs until it is admitted"
		}
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionSuspended, metav1.ConditionTrue, reason, msg)
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSchedulerOutdated)
	} else {
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSuspended)
	}
	pod := o.pod
	if o.suspended {
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionSchedulerReady, metav1.ConditionFalse, "Suspended",
			"the cluster is suspended: no scheduler runs")
	} else if controller.PodReady(pod) {
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionSchedulerReady, metav1.ConditionTrue, "PodReady",
			fmt.Sprintf("scheduler Pod %s is ready", pod.Name))
	} else {
		msg := fmt.Sprintf("scheduler Pod %s does not exist yet", resources.SchedulerName(cluster.Name))
		reason := "PodMissing"
		if pod != nil {
			reason, msg = "PodNotReady", fmt.Sprintf("scheduler Pod %s is %s and not ready", pod.Name, pod.Status.Phase)
		}
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionSchedulerReady, metav1.ConditionFalse, reason, msg)
	}
	if o.svc != nil {
		status.SchedulerAddress = resources.SchedulerAddress(cluster, o.domain)
		status.DashboardURL = resources.DashboardURL(cluster, o.domain)
		status.ExternalSchedulerAddress, status.ExternalDashboardURL = resources.ExternalAddresses(cluster, o.svc)
	}
	serviceSelectorStatus(cluster, o.svc, pod, status)
	clusterWorkerStatus(cluster, o.groups, o.workerHash, status)
	return status
}

// statusEvents records the events of a cluster's status change: a name
// another object holds (once), a resume, a Service that stopped selecting
// the scheduler.
func (c *Controller) statusEvents(cluster *daskv1.DaskCluster, status *daskv1.DaskClusterStatus, createErr error, suspended bool) {
	if msg, ok := controller.ConflictIn(createErr); ok && !controller.OnlyCacheLag(createErr) {
		c.WarnOnce(cluster, cluster.Status.Conditions, daskv1.ConditionResourcesCreated, daskv1.ReasonNameConflict, msg)
	}
	if !suspended && apimeta.FindStatusCondition(cluster.Status.Conditions, daskv1.ConditionSuspended) != nil {
		klog.InfoS("Resuming cluster", "daskcluster", klog.KObj(cluster))
		c.Recorder.Event(cluster, corev1.EventTypeNormal, daskv1.ReasonResumed, "spec.suspend is false: starting the scheduler and workers again")
	}
	if cond := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionServiceSelectsScheduler); cond != nil &&
		cond.Status == metav1.ConditionFalse && conditionChanged(cluster.Status.Conditions, status.Conditions, daskv1.ConditionServiceSelectsScheduler) {
		c.Recorder.Event(cluster, corev1.EventTypeWarning, daskv1.ReasonSelectorMismatch, cond.Message)
	}
}

// clusterPhase keeps the Python operator's meaning, which its KubeCluster
// client waits on: Running once the scheduler Service can be used (for a
// LoadBalancer, once it has an ingress), else Pending.
func clusterPhase(svc *corev1.Service) daskv1.DaskClusterPhase {
	if svc == nil {
		return daskv1.DaskClusterPending
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) == 0 {
		return daskv1.DaskClusterPending
	}
	return daskv1.DaskClusterRunning
}

func clusterWorkerStatus(cluster *daskv1.DaskCluster, groups []*daskv1.DaskWorkerGroup, workerHash string, status *daskv1.DaskClusterStatus) {
	var replicas, ready, desired, defaultReplicas int32
	defaultGroup := resources.DefaultWorkerGroupName(cluster.Name)
	for _, g := range groups {
		if g.DeletionTimestamp != nil {
			continue
		}
		replicas += g.Status.Replicas
		ready += g.Status.ReadyReplicas
		desired += resources.Replicas(&g.Spec.Worker)
		if g.Name == defaultGroup && controller.OwnedBy(g, cluster) {
			defaultReplicas = g.Status.Replicas
			defaultGroupUpdated(cluster, g, workerHash, status)
		}
	}
	status.Replicas, status.ReadyReplicas = replicas, ready
	// The scale subresource describes the default group, which its spec
	// path (spec.worker.replicas) scales.
	status.DefaultGroupReplicas = defaultReplicas
	status.Selector = resources.WorkerGroupSelector(cluster.Name, defaultGroup).String()
	controller.SetWorkersReady(&status.Conditions, cluster.Generation, ready, desired)
}

// defaultGroupUpdated tells, in the cluster's WorkersUpdated condition,
// whether the default group runs the cluster's spec.worker.spec: the group
// has taken the spec (its template hash is the cluster's) and says Updated.
// `kubectl wait dsk/<name> --for=condition=WorkersUpdated` waits on it.
func defaultGroupUpdated(cluster *daskv1.DaskCluster, g *daskv1.DaskWorkerGroup, want string, status *daskv1.DaskClusterStatus) {
	updated := apimeta.FindStatusCondition(g.Status.Conditions, daskv1.ConditionUpdated)
	switch {
	case g.Status.TemplateHash != want || g.Status.ObservedGeneration != g.Generation:
		controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionWorkersUpdated, metav1.ConditionFalse, "Pending",
			fmt.Sprintf("worker group %s has not taken spec.worker.spec (template %s) yet", g.Name, want))
	case updated == nil:
		controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionWorkersUpdated, metav1.ConditionFalse, "Pending",
			fmt.Sprintf("worker group %s reports no rollout state yet", g.Name))
	default:
		controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionWorkersUpdated, updated.Status, updated.Reason,
			fmt.Sprintf("worker group %s: %s", g.Name, updated.Message))
	}
}

// writeClusterStatus writes a cluster's status, paced (clusterStatusPacing).
func (c *Controller) writeClusterStatus(ctx context.Context, key string, cached *daskv1.DaskCluster, status *daskv1.DaskClusterStatus) (time.Duration, error) {
	progressOnly, settled := controller.ClusterStatusPacing(&cached.Status, status)
	return controller.WriteStatus(ctx, c.Base, controller.StatusWrite[*daskv1.DaskCluster]{
		Kind: "DaskCluster", Key: key, Obj: cached, Same: equality.Semantic.DeepEqual(&cached.Status, status),
		Update: func(ctx context.Context) (*daskv1.DaskCluster, error) {
			updated := cached.DeepCopy()
			updated.Status = *status
			return c.Dask.KubernetesV1().DaskClusters(cached.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		},
		Writes:  c.clusterWrites,
		PaceKey: controller.ClusterPaceKey(key), Factor: controller.ClusterStatusFactor, ProgressOnly: progressOnly, Settled: settled,
	})
}

// clusterOwner is a cluster as the owner of the children it creates.
func clusterOwner(c *daskv1.DaskCluster) controller.ChildOwner {
	return controller.ChildOwner{Obj: c, Kind: "DaskCluster", Conditions: c.Status.Conditions}
}

func (c *Controller) ensureSchedulerService(ctx context.Context, cluster *daskv1.DaskCluster) (*corev1.Service, error) {
	desired := resources.SchedulerService(cluster)
	existing, err := c.Caches.Service(cluster.Namespace, desired.Name)
	if apierrors.IsNotFound(err) {
		if created, ok := controller.CreatedAs[*corev1.Service](c.created, "Service", cluster.Namespace, desired.Name); ok {
			existing, err = created, nil
		}
	}
	if apierrors.IsNotFound(err) {
		return controller.CreateChild(ctx, c.Base, c.created, clusterOwner(cluster), "Service", desired,
			c.Kube.CoreV1().Services(cluster.Namespace).Create, c.Kube.CoreV1().Services(cluster.Namespace).Get)
	}
	if err != nil {
		return nil, err
	}
	if !controller.OwnedBy(existing, cluster) {
		return nil, controller.NameConflict("Service", desired.Name, "DaskCluster")
	}
	if updated, changed := resources.ServiceNeedsUpdate(existing, desired); changed {
		out, err := c.Kube.CoreV1().Services(cluster.Namespace).Update(ctx, updated, metav1.UpdateOptions{})
		if err != nil {
			if apierrors.IsInvalid(err) {
				msg := fmt.Sprintf("update Service %s: %v", desired.Name, err)
				c.Recorder.Event(cluster, corev1.EventTypeWarning, daskv1.ReasonUpdateFailed, msg)
				return existing, controller.Permanent(errors.New(msg))
			}
			return existing, err
		}
		return out, nil
	}
	return existing, nil
}

// suspendScheduler deletes the scheduler Pod of a suspended cluster.
func (c *Controller) suspendScheduler(ctx context.Context, cluster *daskv1.DaskCluster) error {
	existing, err := c.schedulerPod(cluster, resources.SchedulerName(cluster.Name))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !controller.OwnedBy(existing, cluster) || existing.DeletionTimestamp != nil {
		return nil
	}
	uid := existing.UID
	err = c.Kube.CoreV1().Pods(cluster.Namespace).Delete(ctx, existing.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the scheduler Pod of the suspended cluster: %w", err)
	}
	klog.InfoS("Suspending cluster: deleted the scheduler Pod", "daskcluster", klog.KObj(cluster), "pod", klog.KObj(existing))
	c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonSuspended, "spec.suspend is true: deleted scheduler Pod %s; worker Pods go too", existing.Name)
	return nil
}

// schedulerOutdated handles a scheduler Pod made from another
// spec.scheduler.spec than the current one. With updateStrategy Recreate it
// is deleted (the next sync creates the new one); else the change is
// recorded in the SchedulerOutdated condition, with the fields that differ,
// and applied when the Pod is next replaced. It reports whether it deleted
// the Pod.
func (c *Controller) schedulerOutdated(ctx context.Context, cluster *daskv1.DaskCluster, existing, desired *corev1.Pod,
	status *daskv1.DaskClusterStatus) (bool, error) {
	hash := c.hashes.Scheduler(cluster)
	if !resources.Outdated(existing, hash) {
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSchedulerOutdated)
		return false, nil
	}
	recreate := cluster.Spec.Scheduler.UpdateStrategy == daskv1.SchedulerRecreate
	old := apimeta.FindStatusCondition(cluster.Status.Conditions, daskv1.ConditionSchedulerOutdated)
	if !recreate && old != nil && strings.Contains(old.Message, " is now "+hash+" ") {
		// Told already: the Pod is read once per change, not per sync.
		controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionSchedulerOutdated, metav1.ConditionTrue, old.Reason, old.Message)
		return false, nil
	}
	// The cache keeps no Pod spec (trimPod): read the running one.
	what := "changed"
	if live, err := c.Kube.CoreV1().Pods(existing.Namespace).Get(ctx, existing.Name, metav1.GetOptions{}); err == nil {
		what = "fields were removed from spec.scheduler.spec"
		if fields := resources.ChangedFields(&desired.Spec, &live.Spec); len(fields) > 0 {
			what = "changed: " + controller.NameList(fields)
		}
	}
	if recreate {
		uid := existing.UID
		err := c.Kube.CoreV1().Pods(cluster.Namespace).Delete(ctx, existing.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("recreate the outdated scheduler Pod %s: %w", existing.Name, err)
		}
		klog.InfoS("Recreating the outdated scheduler", "daskcluster", klog.KObj(cluster), "pod", klog.KObj(existing), "change", what)
		c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonSchedulerRecreated,
			"spec.scheduler.spec %s; updateStrategy Recreate: deleted scheduler Pod %s to create it anew (its tasks and results are lost; workers reconnect to the new scheduler)",
			what, existing.Name)
		return true, nil
	}
	msg := fmt.Sprintf("scheduler Pod %s runs template %s, spec.scheduler.spec is now %s (%s); it is applied when the scheduler Pod is next replaced "+
		"(delete it, or set spec.scheduler.updateStrategy: Recreate), since replacing it loses the scheduler's state",
		existing.Name, existing.Labels[resources.LabelTemplateHash], hash, what)
	controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionSchedulerOutdated, metav1.ConditionTrue, "OnDelete", msg)
	c.Recorder.Event(cluster, corev1.EventTypeNormal, daskv1.ReasonSchedulerOutdated, msg)
	return false, nil
}

// schedulerPod returns the cluster's scheduler Pod from the cache: the one
// of the given name, else one adopted from the Python operator.
func (c *Controller) schedulerPod(cluster *daskv1.DaskCluster, name string) (*corev1.Pod, error) {
	pod, err := c.Caches.Pod(cluster.Namespace, name)
	if apierrors.IsNotFound(err) {
		if created, ok := controller.CreatedAs[*corev1.Pod](c.created, "Pod", cluster.Namespace, name); ok {
			return created, nil
		}
		if adopted := c.adoptedScheduler(cluster); adopted != nil {
			return adopted, nil
		}
	}
	return pod, err
}

func (c *Controller) ensureSchedulerPod(ctx context.Context, cluster *daskv1.DaskCluster, status *daskv1.DaskClusterStatus, placed kueue.Flavor) (*corev1.Pod, error) {
	desired := resources.SchedulerPodWithHash(cluster, c.hashes.Scheduler(cluster))
	// Where Kueue admitted the cluster: its flavor's nodes.
	placed.Apply(&desired.Spec)
	existing, err := c.schedulerPod(cluster, desired.Name)
	if apierrors.IsNotFound(err) {
		created, err := controller.CreateChild(ctx, c.Base, c.created, clusterOwner(cluster), "Pod", desired,
			c.Kube.CoreV1().Pods(cluster.Namespace).Create, c.Kube.CoreV1().Pods(cluster.Namespace).Get)
		if created != nil {
			c.legacyNoted.Note(c.Recorder, cluster, "DaskCluster", cache.MetaObjectToName(cluster).String(), cluster.UID, &cluster.Spec.Scheduler.Spec, cluster.Annotations)
		}
		return created, err
	}
	if err != nil {
		return nil, err
	}
	if !controller.OwnedBy(existing, cluster) {
		return nil, controller.NameConflict("Pod", desired.Name, "DaskCluster")
	}
	// A Pod that ended is replaced (whatever else fails: nothing may stand in
	// the way of a new scheduler); a running one is left to the kubelet,
	// which restarts its containers.
	if controller.PodTerminal(existing) && existing.DeletionTimestamp == nil {
		uid := existing.UID
		err := c.Kube.CoreV1().Pods(cluster.Namespace).Delete(ctx, existing.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return existing, err
		}
		c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonReplaced, "Scheduler Pod %s ended (%s); replacing it", existing.Name, existing.Status.Phase)
		return existing, nil
	}
	if existing.DeletionTimestamp != nil {
		return existing, nil
	}
	if deleted, err := c.schedulerOutdated(ctx, cluster, existing, desired, status); deleted || err != nil {
		return existing, err
	}
	// Labels and annotations added to the cluster reach its running scheduler.
	if patch := resources.MetadataPatch(existing, desired); patch != nil {
		if _, err := c.Kube.CoreV1().Pods(cluster.Namespace).Patch(ctx, existing.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return existing, fmt.Errorf("pass labels and annotations on to scheduler Pod %s: %w", existing.Name, err)
		}
	}
	return existing, nil
}

func (c *Controller) ensureDefaultWorkerGroup(ctx context.Context, cluster *daskv1.DaskCluster) (*daskv1.DaskWorkerGroup, error) {
	desired := resources.DefaultWorkerGroup(cluster)
	existing, err := c.Caches.Group(cluster.Namespace, desired.Name)
	if apierrors.IsNotFound(err) {
		if created, ok := controller.CreatedAs[*daskv1.DaskWorkerGroup](c.created, "DaskWorkerGroup", cluster.Namespace, desired.Name); ok {
			existing, err = created, nil
		}
	}
	if apierrors.IsNotFound(err) {
		return controller.CreateChild(ctx, c.Base, c.created, clusterOwner(cluster), "DaskWorkerGroup", desired,
			c.Dask.KubernetesV1().DaskWorkerGroups(cluster.Namespace).Create, c.Dask.KubernetesV1().DaskWorkerGroups(cluster.Namespace).Get)
	}
	if err != nil {
		return nil, err
	}
	if !controller.OwnedBy(existing, cluster) {
		if metav1.GetControllerOf(existing) == nil {
			// adoptClusterMembers takes it over.
			return existing, nil
		}
		return nil, controller.NameConflict("DaskWorkerGroup", desired.Name, "DaskCluster")
	}
	// Scaled directly (kubectl scale daskworkergroup, an autoscaler, an HPA):
	// the group's count stands and the cluster's spec follows it. Which side
	// was scaled is told by the count both last agreed on: the cluster's
	// record of it, written in the same request as its spec, else the one
	// the group was created or last updated with.
	clusterReplicas, groupReplicas := resources.Replicas(&cluster.Spec.Worker), resources.Replicas(&existing.Spec.Worker)
	clusterCount := strconv.Itoa(int(clusterReplicas))
	synced, recorded := cluster.Annotations[resources.AnnotationSyncedReplicas]
	if !recorded {
		synced = existing.Annotations[resources.AnnotationSyncedReplicas]
	}
	if synced == clusterCount && groupReplicas != clusterReplicas {
		count := strconv.Itoa(int(groupReplicas))
		if err := c.recordWorkerCount(ctx, cluster, count, &groupReplicas); err != nil {
			return existing, fmt.Errorf("follow the scaled default worker group: %w", err)
		}
		desired.Spec.Worker.Replicas = &groupReplicas
		desired.Annotations[resources.AnnotationSyncedReplicas] = count
		clusterCount, recorded = count, false
	}
	out := existing
	if updated, changed := resources.WorkerGroupNeedsUpdate(existing, desired); changed {
		if out, err = c.Dask.KubernetesV1().DaskWorkerGroups(cluster.Namespace).Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			return existing, err
		}
	}
	// The cluster was scaled and the group now follows it: a record left
	// on the cluster by an earlier follow must say so too.
	if recorded && synced != clusterCount {
		if err := c.recordWorkerCount(ctx, cluster, clusterCount, nil); err != nil {
			return out, fmt.Errorf("record the worker count: %w", err)
		}
	}
	return out, nil
}

// recordWorkerCount writes, on the cluster as it was read, the worker count
// it and its default group agree on, with spec.worker.replicas when set.
func (c *Controller) recordWorkerCount(ctx context.Context, cluster *daskv1.DaskCluster, count string, replicas *int32) error {
	body := map[string]any{"metadata": map[string]any{"resourceVersion": cluster.ResourceVersion,
		"annotations": map[string]any{resources.AnnotationSyncedReplicas: count}}}
	if replicas != nil {
		body["spec"] = map[string]any{"worker": map[string]any{"replicas": *replicas}}
	}
	patch, _ := json.Marshal(body)
	patched, err := c.Dask.KubernetesV1().DaskClusters(cluster.Namespace).Patch(ctx, cluster.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return err
	}
	c.clusterWrites.Remember(cluster.Namespace+"/"+cluster.Name, patched)
	return nil
}

// adoptClusterMembers makes the cluster the controller of the worker groups
// and autoscalers that name it, so that they go when it goes.
func (c *Controller) adoptClusterMembers(ctx context.Context, cluster *daskv1.DaskCluster) error {
	ref := resources.ControllerRefToCluster(cluster)
	var errs []error
	for _, g := range c.Caches.GroupsOf(cluster.Namespace, cluster.Name) {
		if metav1.GetControllerOf(g) != nil || g.DeletionTimestamp != nil {
			continue
		}
		_, err := c.Dask.KubernetesV1().DaskWorkerGroups(g.Namespace).Patch(ctx, g.Name, types.MergePatchType, controller.AdoptPatch(g, ref, nil), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("adopt DaskWorkerGroup %s: %w", g.Name, err))
			continue
		}
		c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonAdopted, "Adopted DaskWorkerGroup %s", g.Name)
	}
	for _, a := range c.Caches.AutoscalersOf(cluster.Namespace, cluster.Name) {
		if metav1.GetControllerOf(a) != nil || a.DeletionTimestamp != nil {
			continue
		}
		_, err := c.Dask.KubernetesV1().DaskAutoscalers(a.Namespace).Patch(ctx, a.Name, types.MergePatchType, controller.AdoptPatch(a, ref, nil), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("adopt DaskAutoscaler %s: %w", a.Name, err))
			continue
		}
		c.Recorder.Eventf(cluster, corev1.EventTypeNormal, daskv1.ReasonAdopted, "Adopted DaskAutoscaler %s", a.Name)
	}
	return errors.Join(errs...)
}

// checkIdle deletes the cluster once its scheduler has been idle longer than
// spec.idleTimeout. The scheduler is asked in the background; the answer
// arrives with a later sync. It returns whether the cluster was deleted and
// when to sync again.
func (c *Controller) checkIdle(ctx context.Context, key string, cluster *daskv1.DaskCluster, pod *corev1.Pod, status *daskv1.DaskClusterStatus) (bool, time.Duration) {
	interval := c.Opts.SchedulerPollInterval
	if !controller.PodReady(pod) {
		return false, interval
	}
	// An answer from before the scheduler (re)started tells of another
	// scheduler: ask the new one.
	if res, ok := c.idleChecks.Peek(key); ok && res.At.Before(controller.ReadySince(pod)) {
		c.idleChecks.Forget(key)
	}
	timeout := time.Duration(cluster.Spec.IdleTimeout) * time.Second
	askNow := false
	if res, ok := c.idleChecks.Peek(key); ok && res.Err == nil && res.Value != nil {
		// Only an answer fetched after the timeout was due decides: work
		// submitted since an older answer would not be seen (as the Python
		// operator, which deletes on the answer it just got). An answer that
		// becomes old enough only by waiting is asked again at once.
		idleFor := res.At.Sub(*res.Value)
		askNow = idleFor <= timeout && c.Now().Sub(*res.Value) > timeout
		if idleFor > timeout {
			uid := cluster.UID
			err := c.Dask.KubernetesV1().DaskClusters(cluster.Namespace).Delete(ctx, cluster.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{UID: &uid},
			})
			if err == nil || apierrors.IsNotFound(err) {
				msg := fmt.Sprintf("Scheduler idle for %s (idleTimeout %ds); deleting the cluster", idleFor.Round(time.Second), cluster.Spec.IdleTimeout)
				c.Recorder.Event(cluster, corev1.EventTypeNormal, daskv1.ReasonIdleTimeout, msg)
				klog.InfoS("Deleting idle cluster", "daskcluster", klog.KObj(cluster), "idleFor", idleFor)
				c.idleChecks.Forget(key)
				return true, 0
			}
			klog.ErrorS(err, "Deleting idle cluster failed", "daskcluster", klog.KObj(cluster))
		}
	}
	res, ok := c.idleChecks.Peek(key)
	if ok && errors.Is(res.Err, daskapi.ErrNotSupported) {
		controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionIdleShutdown, metav1.ConditionFalse, "Unsupported",
			"the scheduler does not serve /api/v1/check_idle (Dask too old, or distributed.http.scheduler.api not in distributed.scheduler.http.routes); idleTimeout is not enforced")
		if conditionChanged(cluster.Status.Conditions, status.Conditions, daskv1.ConditionIdleShutdown) {
			c.Recorder.Event(cluster, corev1.EventTypeWarning, daskv1.ReasonIdleUnsupported, "The scheduler has no /api/v1/check_idle route; spec.idleTimeout is not enforced")
		}
		// Ask again now and then: the scheduler may be upgraded.
		interval = 5 * time.Minute
	} else {
		msg := fmt.Sprintf("the cluster is deleted after %ds of scheduler idleness", cluster.Spec.IdleTimeout)
		if ok && res.Err != nil {
			msg = "cannot reach the scheduler to check idleness: " + res.Err.Error()
		}
		controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionIdleShutdown, controller.BoolStatus(ok && res.Err == nil),
			map[bool]string{true: "Watching", false: "SchedulerUnreachable"}[ok && res.Err == nil], msg)
	}
	if ok && res.Err == nil && res.Value != nil && !askNow {
		// Ask when the timeout falls due, not a poll later.
		if due := res.Value.Add(timeout).Sub(c.Now()); due > 0 && due < interval {
			interval = due
		}
	}
	if !ok || askNow || c.Now().Sub(res.At) >= interval {
		target := controller.SchedulerTarget(cluster)
		base := c.SchedulerContext()
		c.idleChecks.Start(key, func() (*time.Time, error) {
			ctx, cancel := context.WithTimeout(base, c.Opts.SchedulerCallTimeout)
			defer cancel()
			return c.DashAPI.CheckIdle(ctx, target)
		}, func() { c.queue.Add(key) })
	}
	return false, interval
}

// serviceSelectorStatus checks that the scheduler Service selects the
// scheduler Pod. spec.scheduler.service is the user's, selector included; one
// that misses the Pod (an example copied from another cluster, say) leaves
// workers, clients and a job's runner waiting for a scheduler they never
// reach, which nothing else reports.
func serviceSelectorStatus(cluster *daskv1.DaskCluster, svc *corev1.Service, pod *corev1.Pod, status *daskv1.DaskClusterStatus) {
	if svc == nil || pod == nil {
		return
	}
	sel := svc.Spec.Selector
	if len(sel) == 0 || labels.SelectorFromSet(sel).Matches(labels.Set(pod.Labels)) {
		controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionServiceSelectsScheduler, metav1.ConditionTrue, "SelectorMatches",
			fmt.Sprintf("Service %s selects the scheduler Pod", svc.Name))
		return
	}
	msg := fmt.Sprintf("Service %s selects %s, which does not match the scheduler Pod %s (labels %s): workers and clients cannot reach the scheduler; fix spec.scheduler.service.selector or leave it empty",
		svc.Name, labels.FormatLabels(sel), pod.Name, labels.FormatLabels(pod.Labels))
	controller.SetCondition(&status.Conditions, cluster.Generation, daskv1.ConditionServiceSelectsScheduler, metav1.ConditionFalse, daskv1.ReasonSelectorMismatch, msg)
}

func conditionChanged(old, now []metav1.Condition, typ string) bool {
	o, n := apimeta.FindStatusCondition(old, typ), apimeta.FindStatusCondition(now, typ)
	if n == nil {
		return false
	}
	return o == nil || o.Status != n.Status || o.Reason != n.Reason
}
