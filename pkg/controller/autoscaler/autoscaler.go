package autoscaler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

func (c *Controller) syncAutoscaler(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	as, err := c.Caches.Autoscaler(ns, name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if done, err := c.RemoveKopfFinalizer(ctx, as); done || err != nil {
		return 0, err
	}
	if as.DeletionTimestamp != nil {
		return 0, nil
	}
	interval := c.Opts.SchedulerPollInterval
	status := as.Status.DeepCopy()
	status.ObservedGeneration = as.Generation

	scaleErr := c.autoscale1(ctx, key, as, status)
	if _, err := controller.WriteStatus(ctx, c.Base, controller.StatusWrite[*daskv1.DaskAutoscaler]{
		Kind: "DaskAutoscaler", Key: key, Obj: as, Same: equality.Semantic.DeepEqual(&as.Status, status),
		Update: func(ctx context.Context) (*daskv1.DaskAutoscaler, error) {
			updated := as.DeepCopy()
			updated.Status = *status
			return c.Dask.KubernetesV1().DaskAutoscalers(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		},
	}); err != nil {
		return 0, err
	}
	if scaleErr != nil {
		return 0, scaleErr
	}
	return interval, nil
}

func (c *Controller) autoscale1(ctx context.Context, key string, as *daskv1.DaskAutoscaler, status *daskv1.DaskAutoscalerStatus) error {
	gen := as.Generation
	cluster, err := c.Caches.Cluster(as.Namespace, as.Spec.Cluster)
	if apierrors.IsNotFound(err) {
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionAbleToScale, metav1.ConditionFalse, "ClusterNotFound",
			fmt.Sprintf("DaskCluster %q does not exist", as.Spec.Cluster))
		return nil
	}
	if err != nil {
		return err
	}
	group, err := c.Caches.Group(as.Namespace, resources.DefaultWorkerGroupName(cluster.Name))
	if apierrors.IsNotFound(err) {
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionAbleToScale, metav1.ConditionFalse, "WorkerGroupNotFound",
			fmt.Sprintf("the default DaskWorkerGroup %s does not exist yet", resources.DefaultWorkerGroupName(cluster.Name)))
		return nil
	}
	if err != nil {
		return err
	}
	controller.SetCondition(&status.Conditions, gen, daskv1.ConditionAbleToScale, metav1.ConditionTrue, "WorkerGroupFound",
		fmt.Sprintf("scales DaskWorkerGroup %s", group.Name))

	if resources.Suspended(cluster) {
		// Nothing runs to ask; the decisions of before the suspension are
		// forgotten, so that the resumed cluster starts afresh.
		c.autoscale.forget(key)
		c.targets.Forget(key)
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionScalingActive, metav1.ConditionFalse, "ClusterSuspended",
			fmt.Sprintf("DaskCluster %s is suspended: the autoscaler does nothing until it is resumed", cluster.Name))
		return nil
	}

	now := c.Now()
	in := scaleInput{Current: resources.Replicas(&group.Spec.Worker), Min: as.Spec.Minimum, Max: as.Spec.Maximum, Now: now}
	if status.CooldownUntil != nil {
		in.CooldownUntil = status.CooldownUntil.Time
	}

	// The scheduler is asked in the background; a missing or unready
	// scheduler Pod is "not ready", not an error.
	pod, _ := c.Caches.Pod(cluster.Namespace, resources.SchedulerName(cluster.Name))
	if controller.PodReady(pod) {
		res, ok := c.targets.Peek(key)
		if ok && res.Err == nil && now.Sub(res.At) < 3*c.Opts.SchedulerPollInterval {
			t := int32(res.Value)
			in.Target = &t
			in.WindowMax = c.autoscale.record(key, res.At, clamp(t, as.Spec.Minimum, as.Spec.Maximum), c.Opts.ScaleDownStabilization)
			controller.SetCondition(&status.Conditions, gen, daskv1.ConditionScalingActive, metav1.ConditionTrue, "TargetKnown",
				fmt.Sprintf("the scheduler wants %d workers", t))
		} else if ok && res.Err != nil {
			controller.SetCondition(&status.Conditions, gen, daskv1.ConditionScalingActive, metav1.ConditionFalse, "SchedulerUnreachable",
				"cannot get the scheduler's adaptive target: "+res.Err.Error())
		}
		if !ok || now.Sub(res.At) >= c.Opts.SchedulerPollInterval {
			target := controller.SchedulerTarget(cluster)
			base := c.SchedulerContext()
			c.targets.Start(key, func() (int, error) {
				ctx, cancel := context.WithTimeout(base, c.Opts.SchedulerCallTimeout)
				defer cancel()
				return c.DashAPI.AdaptiveTarget(ctx, target)
			}, func() { c.queue.Add(key) })
		}
	} else {
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionScalingActive, metav1.ConditionFalse, "SchedulerNotReady",
			fmt.Sprintf("scheduler Pod %s is not ready", resources.SchedulerName(cluster.Name)))
	}

	d := decideScale(in)
	if d.Replicas == in.Current {
		// The status tells the standing decision, also after a write of it
		// was lost to a conflict.
		status.DesiredWorkers = &in.Current
		return nil
	}
	// The change holds only for the group the decision was made from: when
	// someone else scaled it meanwhile (the KubeCluster client deletes the
	// autoscaler, then scales the group), the API server refuses it and the
	// next sync decides again, or finds the autoscaler gone.
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": group.ResourceVersion},
		"spec":     map[string]any{"worker": map[string]any{"replicas": d.Replicas}},
	})
	if _, err := c.Dask.KubernetesV1().DaskWorkerGroups(group.Namespace).Patch(ctx, group.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scale DaskWorkerGroup %s to %d: %w", group.Name, d.Replicas, err)
	}
	desired := d.Replicas
	status.DesiredWorkers = &desired
	status.LastScaleTime = &metav1.Time{Time: now}
	status.CooldownUntil = &metav1.Time{Time: now.Add(c.Opts.AutoscalerCooldown)}
	controller.SetCondition(&status.Conditions, gen, daskv1.ConditionScalingActive, metav1.ConditionTrue, d.Reason, d.Message)
	c.Recorder.Eventf(as, corev1.EventTypeNormal, daskv1.ReasonAutoscaled, "Scaled %s from %d to %d workers: %s", group.Name, in.Current, d.Replicas, d.Message)
	klog.InfoS("Autoscaled worker group", "daskautoscaler", klog.KObj(as), "daskworkergroup", group.Name,
		"from", in.Current, "to", d.Replicas, "reason", d.Reason)
	return nil
}
