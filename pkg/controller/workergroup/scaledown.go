package workergroup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Scale-down: workers are retired through the Dask scheduler, which moves
// their results to the workers that stay, before their Pods are deleted.

// retryRetireAfter paces retire_workers calls while the scheduler fails.
const retryRetireAfter = 5 * time.Second

// scaleDown removes diff workers. Pods whose worker cannot have joined the
// scheduler (no Pod IP, or no container started) hold no data and go at
// once. Every other Pod, Ready or not (a worker whose readiness probe fails
// under load still holds results), goes through the scheduler, in the
// background: Pods whose worker never registered are deleted, and the
// workers chosen from this group are retired by address (the scheduler moves
// their data away first) before their Pods are deleted.
//
// ranked are the Pods to choose from, first to remove first.
func (c *Controller) scaleDown(ctx context.Context, s *groupSync, ranked []*corev1.Pod, diff int) error {
	key, group, cluster := s.key, s.group, s.cluster
	n := min(diff, c.Opts.MaxPodOpsPerSync)
	var unstarted, started []*corev1.Pod
	for _, p := range ranked {
		if workerCannotHaveJoined(p) {
			unstarted = append(unstarted, p)
		} else {
			started = append(started, p)
		}
	}
	if len(unstarted) > 0 {
		victims := unstarted[:min(n, len(unstarted))]
		if err := c.deleteWorkers(ctx, key, group, victims, "unready"); err != nil {
			return err
		}
		klog.InfoS("Deleted worker Pods that had not started", "daskworkergroup", klog.KObj(group), "count", len(victims))
		c.Recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonScaledDown, "Deleted %d worker Pods that had not started", len(victims))
		return nil
	}
	if c.retirements.Running(key) {
		return nil // a retire in progress is waited for; its end enqueues the group
	}
	target := controller.SchedulerTarget(cluster)
	timeout := c.Opts.RetireTimeout
	hash := c.hashes.Worker(key, group)
	candidates := make([]workerRef, len(started))
	for i, p := range started {
		candidates[i] = workerRef{name: p.Name, ip: p.Status.PodIP, tier: victimTier(p, hash)}
	}
	base := c.SchedulerContext()
	c.retirements.Start(key, func() (retirement, error) {
		ctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		return c.retire(ctx, target, candidates, n)
	}, func() { c.queue.Add(key) })
	klog.InfoS("Asking the scheduler to retire workers", "daskworkergroup", klog.KObj(group), "count", n)
	return nil
}

// workerCannotHaveJoined tells a Pod whose Dask worker cannot have
// registered with the scheduler: it has no address, or none of its
// containers has started.
func workerCannotHaveJoined(p *corev1.Pod) bool {
	if p.Status.PodIP == "" {
		return true
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running != nil || s.State.Terminated != nil || s.RestartCount > 0 {
			return false
		}
	}
	return p.Status.Phase == corev1.PodPending
}

// workerRef is what identifies a worker Pod to the scheduler, with its
// victimTier.
type workerRef struct {
	name, ip string
	tier     int
}

// victimTier orders scale-down victims before the bytes their workers hold
// do: not Ready first, then outdated, so that a rollout with
// maxUnavailable 0 does not retire Ready workers while unready outdated ones
// stay, and OnDelete scale-downs take outdated workers first.
func victimTier(p *corev1.Pod, hash string) int {
	tier := 0
	if controller.PodReady(p) {
		tier += 2
	}
	if !resources.Outdated(p, hash) {
		tier++
	}
	return tier
}

// retirement is the outcome of a graceful scale-down: Pods whose worker
// has not joined the scheduler (they hold no data), the workers the
// scheduler retired, and the addresses asked for, by Pod (a Pod may run
// several workers).
type retirement struct {
	unregistered []string
	retired      []daskapi.Worker
	asked        map[string][]string
}

// errSchedulerUnreachable marks a scale-down that could not even list the
// scheduler's workers: only then may the fallback delete running workers.
// A scheduler that answers but fails or is slow to retire keeps its workers.
type errSchedulerUnreachable struct{ err error }

func (e errSchedulerUnreachable) Error() string { return e.err.Error() }

func (e errSchedulerUnreachable) Unwrap() error { return e.err }

// retire removes n workers of one group gracefully. candidates are the
// group's started Pods, first to remove first. Pods the scheduler does not
// know go first; then the first registered candidates are retired by their
// workers' addresses, so the scheduler retires no worker of another group.
func (c *Controller) retire(ctx context.Context, target daskapi.Target, candidates []workerRef, n int) (retirement, error) {
	listCtx, cancel := context.WithTimeout(ctx, c.Opts.SchedulerCallTimeout)
	known, err := c.DashAPI.GetWorkers(listCtx, target)
	cancel()
	if err != nil {
		return retirement{}, errSchedulerUnreachable{err}
	}
	addrs := workerAddresses(known, candidates)
	// Among registered workers, those holding the fewest results go first,
	// as Dask's own choice (workers_to_close) does: less data to move. Ties,
	// and schedulers that do not tell, keep the group's order.
	memCtx, cancel := context.WithTimeout(ctx, c.Opts.SchedulerCallTimeout)
	if held, err := c.DashAPI.WorkerMemory(memCtx, target); err == nil {
		candidates = byHeldBytes(candidates, addrs, held)
	}
	cancel()
	var out retirement
	for _, p := range candidates {
		if len(out.unregistered) < n && len(addrs[p.name]) == 0 {
			out.unregistered = append(out.unregistered, p.name)
		}
	}
	var toRetire []string
	out.asked = map[string][]string{}
	for i := 0; i < len(candidates) && len(out.unregistered)+len(out.asked) < n; i++ {
		if a := addrs[candidates[i].name]; len(a) > 0 {
			toRetire = append(toRetire, a...)
			out.asked[candidates[i].name] = a
		}
	}
	if len(toRetire) == 0 {
		return out, nil
	}
	out.retired, err = c.DashAPI.RetireWorkers(ctx, target, toRetire)
	// A worker that started slowly may have registered while the retire
	// ran (minutes, or until it timed out), and hold results by now: a Pod
	// counts as unregistered only if a listing taken after the retire still
	// does not know it. Without one, none does. After a retire that timed
	// out the listing gets a deadline of its own; after the work was
	// cancelled (shutdown, the Lease lost) no call is made.
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		out.unregistered = nil
		return out, err
	}
	listCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), c.Opts.SchedulerCallTimeout)
	after, lerr := c.DashAPI.GetWorkers(listCtx, target)
	cancel()
	if lerr != nil {
		out.unregistered = nil
	} else {
		fresh := workerAddresses(after, candidates)
		out.unregistered = slices.DeleteFunc(out.unregistered, func(name string) bool { return len(fresh[name]) > 0 })
	}
	return out, err
}

// fullyRetired keeps the Pods every worker of which the scheduler retired:
// a Pod running several workers (--nworkers) whose retire left one of them
// still holds that worker's results.
func fullyRetired(pods []*corev1.Pod, asked map[string][]string, retired []daskapi.Worker) []*corev1.Pod {
	gone := make(map[string]bool, len(retired))
	for _, w := range retired {
		gone[w.Address] = true
	}
	return slices.DeleteFunc(pods, func(p *corev1.Pod) bool {
		if len(asked[p.Name]) < 2 {
			return false // one worker: matched to the Pod by name or IP
		}
		for _, a := range asked[p.Name] {
			if !gone[a] {
				return true
			}
		}
		return false
	})
}

// byHeldBytes orders candidates by their tier (victimTier), then by the
// bytes their workers hold, fewest first, keeping the given order among equals.
func byHeldBytes(candidates []workerRef, addrs map[string][]string, held map[string]int64) []workerRef {
	bytes := func(p workerRef) int64 {
		var n int64
		for _, a := range addrs[p.name] {
			n += held[a]
		}
		return n
	}
	out := slices.Clone(candidates)
	slices.SortStableFunc(out, func(a, b workerRef) int { return cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(bytes(a), bytes(b))) })
	return out
}

// workerAddresses maps each candidate Pod to the addresses of its Dask
// workers: by worker name (workers run with --name $(DASK_WORKER_NAME)), else
// by the IP in the worker's address (a Pod may run several workers).
func workerAddresses(known []daskapi.Worker, candidates []workerRef) map[string][]string {
	byName := map[string][]string{}
	byIP := map[string][]string{}
	for _, w := range known {
		byName[w.Name] = append(byName[w.Name], w.Address)
		if h := addressHost(w.Address); h != "" {
			byIP[h] = append(byIP[h], w.Address)
		}
	}
	out := make(map[string][]string, len(candidates))
	for _, p := range candidates {
		if a := byName[p.name]; len(a) > 0 {
			out[p.name] = a
		} else if p.ip != "" {
			out[p.name] = byIP[p.ip]
		}
	}
	return out
}

// finishRetirement deletes the Pods whose worker never registered and the
// Pods of the workers the scheduler retired, then handles a failed retire.
func (c *Controller) finishRetirement(ctx context.Context, s *groupSync, res controller.AsyncResult[retirement]) (time.Duration, error) {
	key, group, status, active := s.key, s.group, s.status, s.active
	victims, unknown := matchRetiredWorkers(res.Value.retired, active)
	victims = fullyRetired(victims, res.Value.asked, res.Value.retired)
	registered := len(victims)
	// Pods without a registered worker go only while there are still too many
	// (the group may have been scaled up again during the retire).
	// An outdated one (a rollout) goes anyway: it is being replaced.
	excess := len(active) - int(resources.Replicas(&group.Spec.Worker)) - registered
	hash := c.hashes.Worker(key, group)
	for _, p := range active {
		if !slices.Contains(res.Value.unregistered, p.Name) || slices.Contains(victims, p) {
			continue
		}
		if excess > 0 || resources.Outdated(p, hash) {
			victims = append(victims, p)
			excess--
		}
	}
	if len(unknown) > 0 {
		c.Recorder.Eventf(group, corev1.EventTypeWarning, daskv1.ReasonRetiredUnknown,
			"The scheduler retired workers %s that match no Pod of this group by name or IP; start workers with --name $(DASK_WORKER_NAME)",
			controller.NameList(unknown))
	}
	if len(victims) > 0 {
		if err := c.deleteWorkers(ctx, key, group, victims[:registered], "retired"); err != nil {
			return 0, err
		}
		if err := c.deleteWorkers(ctx, key, group, victims[registered:], "unregistered"); err != nil {
			return 0, err
		}
		names := make([]string, len(victims))
		for i, p := range victims {
			names[i] = p.Name
		}
		klog.InfoS("Deleted retired workers", "daskworkergroup", klog.KObj(group), "pods", names)
		c.Recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonScaledDown, "Retired and deleted %d workers (%d without a registered Dask worker): %s",
			len(victims), len(victims)-registered, controller.NameList(names))
	}
	if res.Err != nil {
		return c.retireFailed(ctx, s, victims, res.Err)
	}
	if len(victims) == 0 && len(res.Value.asked) > 0 {
		return c.noWorkerRetired(s, res.Value.asked), nil
	}
	controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionSchedulerReachable, metav1.ConditionTrue, "WorkersRetired",
		fmt.Sprintf("the scheduler retired %d workers; %d Pods had no worker registered", registered, len(victims)-registered))
	if len(victims) == 0 {
		return retryRetireAfter, nil
	}
	return 0, nil
}

// maxRetireBackoff bounds the pause between retires the scheduler refused.
const maxRetireBackoff = 5 * time.Minute

// noWorkerRetired reports a retire the scheduler answered without retiring
// any worker asked for (Dask answers {} when it cannot move their data): the
// scale-down does not progress, which the group's SchedulerReachable
// condition and one Warning say. It asks again after a pause as long as the
// refusals have lasted (5 s, doubling, at most 5 minutes).
func (c *Controller) noWorkerRetired(s *groupSync, asked map[string][]string) time.Duration {
	group, status := s.group, s.status
	msg := fmt.Sprintf("the scale-down does not progress: the scheduler retired none of the workers asked for (%s); "+
		"Dask does so when it cannot move their results to the workers that stay (for example, too little memory there); "+
		"it is asked again, less and less often", controller.NameList(slices.Sorted(maps.Keys(asked))))
	wait := retryRetireAfter
	if old := apimeta.FindStatusCondition(group.Status.Conditions, daskv1.ConditionSchedulerReachable); old != nil &&
		old.Status == metav1.ConditionFalse && old.Reason == daskv1.ReasonNoWorkerRetired {
		wait = min(max(c.Now().Sub(old.LastTransitionTime.Time), retryRetireAfter), maxRetireBackoff)
	}
	c.WarnOnce(group, group.Status.Conditions, daskv1.ConditionSchedulerReachable, daskv1.ReasonNoWorkerRetired, msg)
	controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionSchedulerReachable, metav1.ConditionFalse, daskv1.ReasonNoWorkerRetired, msg)
	klog.InfoS("The scheduler retired no worker", "daskworkergroup", klog.KObj(group), "asked", len(asked), "retryAfter", wait)
	return wait
}

// retireFailed reports a scheduler that could not retire workers. Running
// workers are deleted without retiring them only when the scheduler has been
// unreachable (its workers could not even be listed) for RetireFallbackAfter;
// a scheduler that answers but is slow or fails to retire keeps its workers.
func (c *Controller) retireFailed(ctx context.Context, s *groupSync, deleted []*corev1.Pod, callErr error) (time.Duration, error) {
	key, group, status, active := s.key, s.group, s.status, s.active
	var remaining []*corev1.Pod
	for _, p := range active {
		if !slices.Contains(deleted, p) {
			remaining = append(remaining, p)
		}
	}
	desired := int(resources.Replicas(&group.Spec.Worker))
	excess := len(remaining) - desired
	rolling := 0 // outdated workers a rollout waits to retire
	if !resources.WorkerRollout(&group.Spec.Worker).OnDelete {
		hash := c.hashes.Worker(key, group)
		for _, p := range remaining {
			if resources.Outdated(p, hash) {
				rolling++
			}
		}
	}
	if rolling > 0 {
		// The surge of a rollout is no excess: only current workers beyond
		// replicas are (a group scaled down during the rollout).
		excess -= rolling
	}
	if excess <= 0 && rolling == 0 {
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSchedulerReachable)
		return 0, nil
	}
	var unreachable errSchedulerUnreachable
	isUnreachable := errors.As(callErr, &unreachable)
	fallback := c.Opts.RetireFallbackAfter
	var reason, plan string
	switch {
	case !isUnreachable:
		reason = "RetireFailed"
		plan = "the workers are kept (they may hold results) and asked to retire again"
	case fallback > 0:
		reason = "SchedulerUnreachable"
		plan = fmt.Sprintf("running workers will be deleted without retiring them (their data is lost) once the scheduler has been unreachable for %s", fallback)
	default:
		reason = "SchedulerUnreachable"
		plan = "running workers are kept until the scheduler answers"
	}
	if errors.Is(callErr, daskapi.ErrNotSupported) {
		plan = fmt.Sprintf("the scheduler serves no /api/v1 routes (%s must include %s); %s",
			resources.EnvSchedulerHTTPRoutes, resources.SchedulerAPIRoute, plan)
	}
	msg := fmt.Sprintf("cannot retire %d workers through the scheduler: %v; %s", excess, callErr, plan)
	if excess <= 0 {
		// Only a rollout waits: it never replaces a worker the scheduler
		// did not retire, whatever the fallback says.
		msg = fmt.Sprintf("cannot retire outdated workers through the scheduler: %v; the rollout waits (%d outdated workers are kept, they may hold results) and asks again", callErr, rolling)
	}
	old := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionSchedulerReachable)
	if old == nil || old.Status != metav1.ConditionFalse || old.Reason != reason {
		// The fallback's clock starts when the scheduler became unreachable.
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSchedulerReachable)
		// One Warning when it starts failing, not one per retry (every
		// 5 s): the condition keeps the latest error.
		c.Recorder.Event(group, corev1.EventTypeWarning, daskv1.ReasonRetireFailed, msg)
	}
	controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionSchedulerReachable, metav1.ConditionFalse, reason, msg)

	since := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionSchedulerReachable).LastTransitionTime.Time
	if since.IsZero() {
		since = c.Now()
	}
	if isUnreachable && fallback > 0 && excess > 0 && c.Now().Sub(since) >= fallback {
		victims := outdatedFirst(remaining, c.hashes.Worker(key, group))[:min(excess, len(remaining), c.Opts.MaxPodOpsPerSync)]
		if err := c.deleteWorkers(ctx, key, group, victims, "fallback"); err != nil {
			return 0, err
		}
		names := make([]string, len(victims))
		for i, p := range victims {
			names[i] = p.Name
		}
		klog.InfoS("Deleted running workers without retiring them", "daskworkergroup", klog.KObj(group), "pods", names, "err", callErr)
		c.Recorder.Eventf(group, corev1.EventTypeWarning, daskv1.ReasonFallbackScaleDown,
			"Scheduler unreachable for %s: deleted %d running workers without retiring them: %s",
			c.Now().Sub(since).Round(time.Second), len(victims), controller.NameList(names))
		return 0, nil
	}
	return retryRetireAfter, nil
}

// matchRetiredWorkers maps the workers the scheduler retired to Pods: by
// name (workers run with --name $(DASK_WORKER_NAME)), else by the IP in the
// worker's address. It returns the Pods and the workers it could not map.
func matchRetiredWorkers(retired []daskapi.Worker, pods []*corev1.Pod) ([]*corev1.Pod, []string) {
	byName := make(map[string]*corev1.Pod, len(pods))
	byIP := make(map[string]*corev1.Pod, len(pods))
	for _, p := range pods {
		byName[p.Name] = p
		if p.Status.PodIP != "" {
			byIP[p.Status.PodIP] = p
		}
	}
	seen := map[string]bool{}
	var victims []*corev1.Pod
	var unknown []string
	for _, w := range retired {
		p, ok := byName[w.Name]
		if !ok {
			p, ok = byIP[addressHost(w.Address)]
		}
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%s (%s)", w.Name, w.Address))
			continue
		}
		if !seen[p.Name] {
			seen[p.Name] = true
			victims = append(victims, p)
		}
	}
	sort.Strings(unknown)
	return victims, unknown
}

// addressHost returns the host of a Dask address such as tcp://10.0.0.5:4321.
func addressHost(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Hostname()
}
