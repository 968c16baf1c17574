package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// Config sizes a run.
type Config struct {
	// Rounds is how many times the operator is killed during a scale (the
	// quickest fault); each other fault runs at most its share of them
	// (faultRounds), so that a full run takes under 30 minutes on 2 cores.
	Rounds, Scale, Down, Burst int
	// APIDownMin and APIDownMax bound how long kube-apiserver stays down.
	APIDownMin, APIDownMax time.Duration
	// Timeout bounds each convergence.
	Timeout time.Duration
	// BadInput is how many valid and how many invalid objects the bad-input
	// fault creates (0: none).
	BadInput int
	// Clusters is how many clusters are being created when the API server
	// goes down (0: skip that fault).
	Clusters int
}

func defaultConfig() Config {
	return Config{Rounds: 20, Scale: 300, Down: 20, Burst: 50, APIDownMin: 5 * time.Second, APIDownMax: 20 * time.Second, Timeout: 3 * time.Minute, BadInput: 100, Clusters: 50}
}

// Rounds of the slower faults in a full run of 20 (issue 16 asks 20 kills
// and 5 rounds of API server outages, mid-scale and mid-creation); a run of
// fewer rounds caps them at as many.
const (
	apiDownRounds    = 5
	compactionRounds = 3
	otherRounds      = 2
)

// faultRounds is how many of cfg.Rounds rounds a fault of at most limit rounds runs.
func faultRounds(cfg Config, limit int) int { return min(cfg.Rounds, limit) }

// FaultResult is what one fault's rounds showed.
type FaultResult struct {
	Name       string          `json:"name"`
	Runs       int             `json:"runs"`
	Converged  int             `json:"converged"`
	Times      []time.Duration `json:"timesToConverge"`
	Violations []string        `json:"violations"`
	// Notes are figures a fault reports beside its times.
	Notes []string `json:"notes,omitempty"`
}

// Results of a run.
type Results struct {
	Date    string         `json:"date"`
	Machine string         `json:"machine"`
	Config  string         `json:"config"`
	Faults  []*FaultResult `json:"faults"`
}

// Failed tells whether any fault broke an invariant or did not converge.
func (r *Results) Failed() bool {
	for _, f := range r.Faults {
		if len(f.Violations) > 0 || f.Converged < f.Runs {
			return true
		}
	}
	return false
}

// fallbackTimeout is the operator's --retire-fallback-timeout here (30 s by
// default), shorter to keep the rounds short.
const fallbackTimeout = 10 * time.Second

const (
	clusterName = "f"
	groupName   = clusterName + "-default"
	holdFinal   = "faults.dask.org/hold"
)

// Run starts a control plane, the operator binary and a fake scheduler, and
// injects the faults: the operator kill cfg.Rounds times, the others as
// faultRounds says.
func Run(cfg Config) (*Results, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	env, err := testenv.Start(testenv.Options{Nodes: true, SkipGarbageCollectorWait: true, AuditLog: true})
	if err != nil {
		return nil, err
	}
	defer env.Stop()
	kube := kubernetes.NewForConfigOrDie(env.Config)
	dask := versioned.NewForConfigOrDie(env.Config)
	ctx := context.Background()
	ns := "faults"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	sched, err := testenv.NewFakeScheduler(kube, "dask.org/component=worker")
	if err != nil {
		return nil, err
	}
	defer sched.Close()

	bin := filepath.Join(env.Dir, "dask-operator")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dask-operator")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the operator: %v\n%s", err, out)
	}
	op := &operator{bin: bin, args: []string{"--kubeconfig=" + env.Kubeconfig, "--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--scheduler-url-template=" + sched.URL(),
		"--retire-fallback-timeout=" + fallbackTimeout.String(), "-v=2"},
		log: filepath.Join(os.TempDir(), "dask-operator-faults.log")}
	if err := op.start(); err != nil {
		return nil, err
	}
	defer op.kill()

	w, err := watch(ctx, kube, ns, sched)
	if err != nil {
		return nil, err
	}
	d := &driver{ctx: ctx, kube: kube, dask: dask, ns: ns, w: w, op: op, cfg: cfg, sched: sched, env: env, eventPolls: 25}
	if _, err := dask.KubernetesV1().DaskClusters(ns).Create(ctx, faultCluster(ns), metav1.CreateOptions{}); err != nil {
		return nil, err
	}

	res := &Results{Date: time.Now().UTC().Format(time.RFC3339), Machine: testenv.Machine(),
		Config: fmt.Sprintf("rounds=%d scale=%d down=%d burst=%d api-down=%s-%s timeout=%s retire-fallback-timeout=%s bad-input=%d clusters=%d",
			cfg.Rounds, cfg.Scale, cfg.Down, cfg.Burst, cfg.APIDownMin, cfg.APIDownMax, cfg.Timeout, fallbackTimeout, cfg.BadInput, cfg.Clusters)}
	kill := &FaultResult{Name: fmt.Sprintf("operator SIGKILLed during scale-up 0 -> %d and scale-down %d -> %d", cfg.Scale, cfg.Scale, cfg.Down)}
	burst := &FaultResult{Name: fmt.Sprintf("%d worker Pods deleted at once behind the operator", cfg.Burst)}
	stuck := &FaultResult{Name: fmt.Sprintf("scale-down %d -> %d with %d Pods stuck Terminating (finalizer)", cfg.Scale, cfg.Down, cfg.Burst)}
	apiDown := &FaultResult{Name: fmt.Sprintf("kube-apiserver down for %s-%s, mid-scale 0 -> %d and %d -> %d", cfg.APIDownMin, cfg.APIDownMax, cfg.Scale, cfg.Scale, cfg.Down)}
	compaction := &FaultResult{Name: fmt.Sprintf("etcd compacted and kube-apiserver restarted (watches resumed from a compacted revision: 410 Gone), mid-scale 0 -> %d and %d -> %d", cfg.Scale, cfg.Scale, cfg.Down)}
	outage := &FaultResult{Name: fmt.Sprintf("kube-apiserver down for %s-%s mid-creation of %d clusters; then all deleted, nothing left behind", cfg.APIDownMin, cfg.APIDownMax, cfg.Clusters)}
	bad := &FaultResult{Name: fmt.Sprintf("%d valid clusters created among %d invalid objects (refused at admission, or a condition and one event each)", cfg.BadInput, cfg.BadInput)}
	nodeGone := &FaultResult{Name: fmt.Sprintf("the node running the %d workers deleted with its Pods (another node added)", cfg.Scale)}
	res.Faults = []*FaultResult{kill, burst, stuck, nodeGone, apiDown, compaction}
	if cfg.Clusters > 0 {
		res.Faults = append(res.Faults, outage)
	}
	schedFaults := []testenv.SchedulerFault{testenv.SchedulerErrors, testenv.SchedulerGarbage, testenv.SchedulerSlow, testenv.SchedulerBlackHole}
	bySched := map[testenv.SchedulerFault]*FaultResult{}
	for _, f := range schedFaults {
		bySched[f] = &FaultResult{Name: fmt.Sprintf("scale-down %d -> %d while the scheduler %s", cfg.Scale, cfg.Down, f)}
		res.Faults = append(res.Faults, bySched[f])
	}
	leaderKilled := &FaultResult{Name: fmt.Sprintf("two replicas with leader election: the leader SIGKILLed during a scale-up to %d", cfg.Scale)}
	leaderPaused := &FaultResult{Name: fmt.Sprintf("two replicas: the leader SIGSTOPped past its lease (%s) during a scale-down to %d, then resumed (no write after the takeover, from the audit log)", leaseDuration, cfg.Down)}
	res.Faults = append(res.Faults, leaderKilled, leaderPaused)
	if cfg.BadInput > 0 {
		res.Faults = append(res.Faults, bad)
	}
	for r := 0; r < cfg.Rounds; r++ {
		fmt.Printf("round %d/%d\n", r+1, cfg.Rounds)
		other := r < faultRounds(cfg, otherRounds)
		for _, target := range []int{cfg.Scale, cfg.Down} {
			d.record(kill, func() (time.Time, error) { return d.scaleWithKill(target) }, target)
		}
		if other {
			d.record(burst, d.burst, cfg.Scale)
			d.record(stuck, d.stuckScaleDown, cfg.Down)
			d.record(nodeGone, d.nodeDeleted, cfg.Scale)
		}
		if err := d.scale(0); err != nil {
			return nil, err
		}
		if _, err := d.converge(0); err != nil {
			return nil, fmt.Errorf("reset to 0 workers: %w", err)
		}
		// An outage or a compaction interrupts a scale-up or a scale-down:
		// both in a run of one round, else one each round, in turn.
		outageScales, compactionScales := []int{cfg.Scale}, []int{cfg.Down}
		switch {
		case cfg.Rounds == 1:
			outageScales = []int{cfg.Scale, cfg.Down}
			compactionScales = outageScales
		case r%2 == 1:
			outageScales, compactionScales = compactionScales, outageScales
		}
		if r < faultRounds(cfg, apiDownRounds) {
			for _, target := range outageScales {
				if err := d.before(target); err != nil {
					return nil, err
				}
				d.record(apiDown, func() (time.Time, error) { return d.scaleWithAPIServerDown(target) }, target)
			}
		}
		if r < faultRounds(cfg, compactionRounds) {
			for _, target := range compactionScales {
				if err := d.before(target); err != nil {
					return nil, err
				}
				d.record(compaction, func() (time.Time, error) { return d.scaleWithCompaction(target) }, target)
			}
		}
		if other {
			for _, f := range schedFaults {
				d.record(bySched[f], func() (time.Time, error) { return d.schedulerFault(f) }, cfg.Down)
			}
			if err := d.leaderFaults(leaderKilled, leaderPaused); err != nil {
				return nil, fmt.Errorf("leader election faults: %w", err)
			}
			d.badInput(bad, cfg.BadInput)
		}
		if r < faultRounds(cfg, apiDownRounds) {
			d.outageCreation(outage, cfg.Clusters)
		}
		if err := d.scale(0); err != nil {
			return nil, err
		}
		if _, err := d.converge(0); err != nil {
			return nil, fmt.Errorf("reset to 0 workers: %w", err)
		}
	}
	return res, nil
}

type driver struct {
	ctx   context.Context
	kube  kubernetes.Interface
	dask  versioned.Interface
	ns    string
	w     *watcher
	op    *operator
	cfg   Config
	sched *testenv.FakeScheduler
	env   *testenv.Env
	// eventPolls is how often, 200 ms apart, an event is looked for.
	eventPolls int
	// fallbacksSeen is how many fallback deletions events accounted for so far.
	fallbacksSeen int
	// release are Pods a fault holds with a finalizer until it converged.
	release []string
	// nodes is how many kwok nodes were added.
	nodes int
}

// record runs one fault, waits for convergence to target, and adds the
// outcome (time to converge counted from the fault's injection, which the
// fault returns) and the violations seen meanwhile to r.
func (d *driver) record(r *FaultResult, fault func() (time.Time, error), target int) {
	r.Runs++
	start, err := fault()
	if err == nil {
		_, err = d.converge(target)
	}
	if err != nil {
		r.Violations = append(r.Violations, "did not converge: "+err.Error())
	} else {
		r.Converged++
		r.Times = append(r.Times, time.Since(start))
	}
	for _, p := range d.release {
		_, _ = d.kube.CoreV1().Pods(d.ns).Patch(d.ctx, p, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	}
	d.release = nil
	r.Violations = append(r.Violations, d.w.takeViolations()...)
	r.Violations = append(r.Violations, d.unannouncedFallbacks(d.w.takeUnretired())...)
	d.sched.SetFault(testenv.SchedulerHealthy)
}

// unannouncedFallbacks returns a violation when Ready workers were deleted
// without a retire and the FallbackScaleDown events of their group (which
// name the first few and count them all) account for fewer of them.
func (d *driver) unannouncedFallbacks(pods []string) []string {
	if len(pods) == 0 {
		return nil
	}
	counted := 0
	for poll := 0; poll < d.eventPolls; poll++ { // events are written asynchronously
		evs, err := d.kube.CoreV1().Events(d.ns).List(d.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + groupName + ",reason=FallbackScaleDown"})
		counted = 0
		if err == nil {
			for _, e := range evs.Items {
				if m := fallbackCount.FindStringSubmatch(e.Message); m != nil {
					n, _ := strconv.Atoi(m[1])
					counted += n * int(max(e.Count, 1))
				}
			}
		}
		if counted >= d.fallbacksSeen+len(pods) {
			d.fallbacksSeen = counted
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return []string{fmt.Sprintf("%d Ready workers deleted without the scheduler retiring them (%s), and FallbackScaleDown events account for %d",
		len(pods), strings.Join(pods[:min(len(pods), 5)], ", "), counted-d.fallbacksSeen)}
}

// fallbackCount reads the operator's FallbackScaleDown message.
var fallbackCount = regexp.MustCompile(`deleted (\d+) running workers without retiring them`)

// schedulerFault scales down while the scheduler misbehaves. A scheduler
// that answers retire_workers with errors must keep its workers and the
// group must say why (SchedulerReachable=False) within 30 s; then it
// recovers. A slow one is waited for; an unreachable one (black-holed, or
// garbage instead of its worker list) may end in the documented fallback,
// which the recorded outcome checks for its event.
func (d *driver) schedulerFault(fault testenv.SchedulerFault) (time.Time, error) {
	if _, err := d.fill(d.cfg.Scale); err != nil {
		return time.Now(), err
	}
	d.sched.SetFault(fault)
	d.w.setDesired(d.cfg.Down)
	start := time.Now()
	if err := d.scale(d.cfg.Down); err != nil {
		return start, err
	}
	if fault == testenv.SchedulerSlow || fault == testenv.SchedulerBlackHole {
		return start, nil
	}
	for time.Since(start) < 30*time.Second {
		g, err := d.dask.KubernetesV1().DaskWorkerGroups(d.ns).Get(d.ctx, groupName, metav1.GetOptions{})
		if err == nil {
			for _, c := range g.Status.Conditions {
				if c.Type == "SchedulerReachable" && c.Status == metav1.ConditionFalse {
					d.sched.SetFault(testenv.SchedulerHealthy)
					return time.Now(), nil // converging from the recovery
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return start, fmt.Errorf("the scheduler %s for 30 s and the group has no SchedulerReachable=False condition saying so", fault)
}

func (d *driver) scale(n int) error {
	patch := fmt.Sprintf(`{"spec":{"worker":{"replicas":%d}}}`, n)
	_, err := d.dask.KubernetesV1().DaskClusters(d.ns).Patch(d.ctx, clusterName, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

// scaleWithKill scales to n, SIGKILLs the operator at a random moment of
// the scale, and starts it again.
func (d *driver) scaleWithKill(n int) (time.Time, error) {
	d.w.setDesired(n)
	start := time.Now()
	if err := d.scale(n); err != nil {
		return start, err
	}
	time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Second))))
	d.op.kill()
	return start, d.op.start()
}

// fill scales to n workers, waits for them and returns their Pods.
func (d *driver) fill(n int) ([]string, error) {
	d.w.setDesired(n)
	if err := d.scale(n); err != nil {
		return nil, err
	}
	if _, err := d.converge(n); err != nil {
		return nil, err
	}
	return d.livePods()
}

// before brings the group to where a fault that scales to target starts
// from: a scale-down starts from cfg.Scale workers.
func (d *driver) before(target int) error {
	if target != d.cfg.Down {
		return nil
	}
	_, err := d.fill(d.cfg.Scale)
	return err
}

// scaleWithAPIServerDown scales to n and, at a random moment of the scale,
// stops kube-apiserver for a while; the operator must keep running (no
// crash loop), re-list and converge.
func (d *driver) scaleWithAPIServerDown(n int) (time.Time, error) {
	d.w.setDesired(n)
	start := time.Now()
	if err := d.scale(n); err != nil {
		return start, err
	}
	time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
	down := d.cfg.APIDownMin + time.Duration(rand.Int64N(int64(d.cfg.APIDownMax-d.cfg.APIDownMin)+1))
	if err := d.env.Restart("kube-apiserver", down); err != nil {
		return start, err
	}
	if d.op.exited() {
		return start, fmt.Errorf("the operator exited while the API server was down")
	}
	return start, nil
}

// burst deletes cfg.Burst live worker Pods at once.
func (d *driver) burst() (time.Time, error) {
	pods, err := d.fill(d.cfg.Scale)
	if err != nil {
		return time.Now(), err
	}
	victims := pods[:min(d.cfg.Burst, len(pods))]
	d.w.injected(victims)
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = d.kube.CoreV1().Pods(d.ns).Delete(d.ctx, p, metav1.DeleteOptions{})
		}()
	}
	wg.Wait()
	return start, nil
}

// stuckScaleDown holds cfg.Burst Pods with a finalizer, scales down, and
// lets them go once the group has converged.
func (d *driver) stuckScaleDown() (time.Time, error) {
	pods, err := d.fill(d.cfg.Scale)
	if err != nil {
		return time.Now(), err
	}
	held := pods[:min(d.cfg.Burst, len(pods))]
	for _, p := range held {
		patch := fmt.Sprintf(`{"metadata":{"finalizers":[%q]}}`, holdFinal)
		if _, err := d.kube.CoreV1().Pods(d.ns).Patch(d.ctx, p, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return time.Now(), err
		}
	}
	// They go once the group has converged (record waits for it first).
	d.release = held
	d.w.setDesired(d.cfg.Down)
	start := time.Now()
	return start, d.scale(d.cfg.Down)
}

func (d *driver) livePods() ([]string, error) {
	list, err := d.kube.CoreV1().Pods(d.ns).List(d.ctx, metav1.ListOptions{LabelSelector: "dask.org/component=worker"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// converge waits until the group has exactly n live worker Pods, all Ready,
// and its status says so for its current generation.
func (d *driver) converge(n int) (time.Duration, error) {
	start := time.Now()
	last := ""
	for time.Since(start) < d.cfg.Timeout {
		list, err := d.kube.CoreV1().Pods(d.ns).List(d.ctx, metav1.ListOptions{LabelSelector: "dask.org/component=worker"})
		g, gerr := d.dask.KubernetesV1().DaskWorkerGroups(d.ns).Get(d.ctx, groupName, metav1.GetOptions{})
		if err == nil && gerr == nil {
			live, ready := 0, 0
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil {
					live++
					if testenv.PodReady(&p) {
						ready++
					}
				}
			}
			s := g.Status
			// The invariants' watch must have seen it too: the next fault
			// changes what it checks against.
			watched := d.w.liveCount()
			if live == n && ready == n && s.Replicas == int32(n) && s.ReadyReplicas == int32(n) && s.ObservedGeneration == g.Generation &&
				g.Spec.Worker.Replicas != nil && *g.Spec.Worker.Replicas == int32(n) && watched == n {
				return time.Since(start), nil
			}
			last = fmt.Sprintf("%d live Pods (%d ready; %d seen by the watch), group status %d/%d, want %d", live, ready, watched, s.ReadyReplicas, s.Replicas, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, fmt.Errorf("not converged to %d workers within %s: %s", n, d.cfg.Timeout, last)
}

// watcher checks the invariants at every Pod event.
type watcher struct {
	sched *testenv.FakeScheduler

	mu         sync.Mutex
	desired    int
	live       map[string]bool
	ready      map[string]bool
	deleted    map[string]bool // by the fault itself
	node       map[string]string
	phase      map[string]string
	unretired  []string // Ready workers deleted without a retire
	violations []string
	ended      map[string]bool // Pods seen Succeeded or Failed
	// schedulers are the live scheduler Pods, by name, with their cluster.
	schedulers map[string]string
}

func watch(ctx context.Context, kube kubernetes.Interface, ns string, sched *testenv.FakeScheduler) (*watcher, error) {
	w := &watcher{sched: sched, live: map[string]bool{}, ready: map[string]bool{}, deleted: map[string]bool{},
		node: map[string]string{}, phase: map[string]string{}, schedulers: map[string]string{}, ended: map[string]bool{}}
	if err := w.watchSchedulers(ctx, kube, ns); err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "dask.org/component=worker" }))
	inf := factory.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.seen(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { w.seen(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				w.gone(p.Name)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("pod watch did not sync")
	}
	return w, nil
}

func (w *watcher) seen(p *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.DeletionTimestamp != nil {
		w.goneLocked(p.Name)
		return
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || w.ended[p.Name] {
		// Ended (the Pod garbage collector marks the Pods of a deleted node
		// Failed before it deletes them): no longer a worker, and replaced
		// as a ReplicaSet replaces it. Its end is not a deletion by the
		// operator. An ended Pod never runs again in Kubernetes; kwok, still
		// serving a node that is gone, can set one Running again, which the
		// operator (rightly) ignores: so does the check.
		w.ended[p.Name] = true
		w.ready[p.Name] = false
		w.goneLocked(p.Name)
		return
	}
	if !w.live[p.Name] {
		if len(w.live) >= w.desired {
			byNode := map[string]int{}
			for name := range w.live {
				byNode[w.node[name]+"/"+w.phase[name]]++
			}
			w.violations = append(w.violations, fmt.Sprintf("over-creation: Pod %s created while %d live Pods, %d asked for (live by node/phase: %v)",
				p.Name, len(w.live), w.desired, byNode))
		}
		w.live[p.Name] = true
	}
	w.node[p.Name], w.phase[p.Name] = p.Spec.NodeName, string(p.Status.Phase)
	w.ready[p.Name] = testenv.PodReady(p)
}

// watchSchedulers checks that no cluster ever has two scheduler Pods
// running at once (one ended or being deleted does not count).
func (w *watcher) watchSchedulers(ctx context.Context, kube kubernetes.Interface, ns string) error {
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "dask.org/component=scheduler" }))
	inf := factory.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.scheduler(obj.(*corev1.Pod), false) },
		UpdateFunc: func(_, obj any) { w.scheduler(obj.(*corev1.Pod), false) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				w.scheduler(p, true)
			}
		},
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("scheduler watch did not sync")
	}
	return nil
}

func (w *watcher) scheduler(p *corev1.Pod, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if deleted || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		delete(w.schedulers, p.Name)
		return
	}
	cluster := p.Labels["dask.org/cluster-name"]
	w.schedulers[p.Name] = cluster
	var same []string
	for name, c := range w.schedulers {
		if c == cluster {
			same = append(same, name)
		}
	}
	if len(same) > 1 {
		slices.Sort(same)
		w.violations = append(w.violations, fmt.Sprintf("two schedulers: cluster %s has scheduler Pods %v running at once", cluster, same))
	}
}

func (w *watcher) gone(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.goneLocked(name)
}

func (w *watcher) goneLocked(name string) {
	if !w.live[name] {
		return
	}
	if w.ready[name] && !w.deleted[name] && !w.sched.Retired(name) {
		// Allowed only as the documented fallback, with its event: the
		// driver looks for it once the fault has converged.
		w.unretired = append(w.unretired, name)
	}
	delete(w.live, name)
	delete(w.ready, name)
	delete(w.node, name)
	delete(w.phase, name)
}

func (w *watcher) liveCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.live)
}

func (w *watcher) setDesired(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.desired = n
}

func (w *watcher) injected(pods []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range pods {
		w.deleted[p] = true
	}
}

func (w *watcher) takeViolations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.violations
	w.violations = nil
	return v
}

func (w *watcher) takeUnretired() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.unretired
	w.unretired = nil
	return v
}

// operator is the operator binary, SIGKILLed and started again at will.
type operator struct {
	bin  string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (o *operator) start() error {
	f, err := os.OpenFile(o.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	o.cmd = exec.Command(o.bin, o.args...)
	o.cmd.Stdout, o.cmd.Stderr = f, f
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := o.cmd.Start(); err != nil {
		return err
	}
	done, cmd := make(chan struct{}), o.cmd
	o.done = done
	go func() { _ = cmd.Wait(); close(done) }()
	return nil
}

// exited tells whether the operator ended by itself (a crash).
func (o *operator) exited() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

func (o *operator) kill() {
	if o.cmd != nil && o.cmd.Process != nil {
		_ = o.cmd.Process.Kill()
		<-o.done
	}
}

func faultCluster(ns string) *daskv1.DaskCluster {
	zero := int32(0)
	return &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: clusterName, Namespace: ns},
		Spec: daskv1.DaskClusterSpec{
			Worker: daskv1.WorkerSpec{Replicas: &zero, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "worker", Image: "ghcr.io/dask/dask:latest", Args: []string{"dask", "worker", "--name", "$(DASK_WORKER_NAME)"},
			}}}},
			Scheduler: daskv1.SchedulerSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "scheduler", Image: "ghcr.io/dask/dask:latest", Args: []string{"dask", "scheduler"},
					Ports: []corev1.ContainerPort{{Name: "tcp-comm", ContainerPort: 8786}, {Name: "http-dashboard", ContainerPort: 8787}},
				}}},
				Service: corev1.ServiceSpec{Ports: []corev1.ServicePort{
					{Name: "tcp-comm", Port: 8786}, {Name: "http-dashboard", Port: 8787},
				}},
			},
		},
	}
}

// Markdown renders the results as the table results.md holds.
func (r *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Fault injection\n\n%s, on %s (%s). Invariants are checked at every Pod event, from a watch.\n\n", r.Date, r.Machine, r.Config)
	b.WriteString("| fault | runs | converged | time to converge, median | max | invariant violations |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Faults {
		med, max := "-", "-"
		if len(f.Times) > 0 {
			t := slices.Clone(f.Times)
			slices.Sort(t)
			m := t[len(t)/2]
			if len(t)%2 == 0 {
				m = (t[len(t)/2-1] + t[len(t)/2]) / 2
			}
			med, max = m.Round(10*time.Millisecond).String(), t[len(t)-1].Round(10*time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %d |\n", f.Name, f.Runs, f.Converged, med, max, len(f.Violations))
	}
	for _, f := range r.Faults {
		for _, n := range f.Notes {
			fmt.Fprintf(&b, "\n- %s", n)
		}
	}
	for _, f := range r.Faults {
		for _, v := range f.Violations {
			fmt.Fprintf(&b, "\n- %s: %s", f.Name, v)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// Write stores results.md and results.json in dir.
func (r *Results) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.Markdown()), 0o644)
}
