package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// etcdCall posts a JSON request to etcd's gRPC gateway.
func etcdCall(base, path string, body any, out any) error {
	data, _ := json.Marshal(body)
	resp, err := http.Post(base+path, "application/json", bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: HTTP %d", path, resp.StatusCode)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// compactEtcd compacts etcd's history up to its current revision: every
// older resourceVersion is gone, so a watch resumed from one gets 410 Gone.
func compactEtcd(base string) (int64, error) {
	var r struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := etcdCall(base, "/v3/kv/range", map[string]any{"key": "AA==", "limit": 1}, &r); err != nil {
		return 0, err
	}
	var rev int64
	if _, err := fmt.Sscan(r.Header.Revision, &rev); err != nil {
		return 0, fmt.Errorf("etcd revision %q: %v", r.Header.Revision, err)
	}
	return rev, etcdCall(base, "/v3/kv/compaction", map[string]any{"revision": rev, "physical": true}, nil)
}

// scaleWithCompaction scales to n and, mid-scale, compacts etcd and
// restarts kube-apiserver (whose new watch cache starts at the compacted
// revision): the operator's watches must re-list (410 Gone) and converge
// while Pods churn.
func (d *driver) scaleWithCompaction(n int) (time.Time, error) {
	d.w.setDesired(n)
	start := time.Now()
	if err := d.scale(n); err != nil {
		return start, err
	}
	time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
	if _, err := compactEtcd(d.env.EtcdURL); err != nil {
		return start, fmt.Errorf("compact etcd: %w", err)
	}
	if err := d.env.Restart("kube-apiserver", 500*time.Millisecond); err != nil {
		return start, err
	}
	if d.op.exited() {
		return start, fmt.Errorf("the operator exited after the compaction")
	}
	return start, nil
}

// badInput creates n valid clusters alone, then n valid ones mixed with n
// invalid ones, and compares how long the valid ones take to be Running
// with their workers Ready. Every invalid one must be refused at admission
// or get a False condition and exactly one event saying why.
func (d *driver) badInput(r *FaultResult, n int) {
	if n <= 0 {
		return
	}
	ns := "bad-input"
	if _, err := d.kube.CoreV1().Namespaces().Create(d.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		r.Runs++
		r.Violations = append(r.Violations, "create namespace: "+err.Error())
		return
	}
	alone, err := d.timeValid(ns, "alone", n, 0, r)
	if err != nil {
		r.Runs++
		r.Violations = append(r.Violations, "valid clusters alone: "+err.Error())
		return
	}
	r.Runs++
	mixed, err := d.timeValid(ns, "mixed", n, n, r)
	if err != nil {
		r.Violations = append(r.Violations, "valid clusters among invalid ones: "+err.Error())
		return
	}
	r.Converged++
	r.Times = append(r.Times, mixed)
	r.Notes = append(r.Notes, fmt.Sprintf("%d valid clusters Running in %s alone and in %s among %d invalid objects: ratio %.2f",
		n, alone.Round(10*time.Millisecond), mixed.Round(10*time.Millisecond), n, float64(mixed)/float64(alone)))
}

// timeValid creates valid clusters (and invalid objects), waits until the
// valid ones run, checks the invalid ones, deletes everything and returns
// how long the valid ones took.
func (d *driver) timeValid(ns, prefix string, valid, invalid int, r *FaultResult) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	refused := map[string]bool{}
	for i := 0; i < max(valid, invalid); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < valid {
				c := faultCluster(ns)
				c.Name = fmt.Sprintf("%s-ok-%d", prefix, i)
				one := int32(1)
				c.Spec.Worker.Replicas = &one
				if _, err := d.dask.KubernetesV1().DaskClusters(ns).Create(d.ctx, c, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}
			if i < invalid {
				name, err := d.createInvalid(ns, prefix, i)
				mu.Lock()
				if err != nil {
					refused[name] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, fmt.Errorf("create: %s", errs[0])
	}
	for time.Since(start) < d.cfg.Timeout {
		list, err := d.dask.KubernetesV1().DaskClusters(ns).List(d.ctx, metav1.ListOptions{})
		if err == nil {
			running := 0
			for _, c := range list.Items {
				if strings.HasPrefix(c.Name, prefix+"-ok-") && c.Status.Phase == daskv1.DaskClusterRunning && c.Status.ReadyReplicas == 1 {
					running++
				}
			}
			if running == valid {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	if took >= d.cfg.Timeout {
		return 0, fmt.Errorf("the valid clusters did not all run within %s", d.cfg.Timeout)
	}
	r.Violations = append(r.Violations, d.checkInvalid(ns, prefix, invalid, refused)...)
	if left := d.deleteAndCheckNothingLeft(ns); len(left) > 0 {
		return took, fmt.Errorf("%s", left[0])
	}
	return took, nil
}

// invalidKinds are the bad inputs, in turn: refused at admission, or
// accepted and then told about by the operator.
var invalidKinds = []string{"negative-replicas", "bad-surge", "no-image", "selector-misses", "no-cluster"}

// createInvalid creates the i-th invalid object and returns its name and
// the admission error, if it was refused.
func (d *driver) createInvalid(ns, prefix string, i int) (string, error) {
	kind := invalidKinds[i%len(invalidKinds)]
	name := fmt.Sprintf("%s-bad-%s-%d", prefix, kind, i)
	c := faultCluster(ns)
	c.Name = name
	one := int32(1)
	c.Spec.Worker.Replicas = &one
	switch kind {
	case "negative-replicas":
		minus := int32(-1)
		c.Spec.Worker.Replicas = &minus
	case "bad-surge":
		bad := intstr.FromString("lots")
		c.Spec.Worker.Strategy = &daskv1.WorkerUpdateStrategy{RollingUpdate: &daskv1.RollingUpdateWorkers{MaxSurge: &bad}}
	case "no-image":
		c.Spec.Scheduler.Spec.Containers[0].Image = "" // the API server refuses the Pod
	case "selector-misses":
		c.Spec.Scheduler.Service.Selector = map[string]string{"app": "elsewhere"}
	case "no-cluster":
		g := &daskv1.DaskWorkerGroup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: daskv1.DaskWorkerGroupSpec{Cluster: "missing-" + name, Worker: c.Spec.Worker}}
		_, err := d.dask.KubernetesV1().DaskWorkerGroups(ns).Create(d.ctx, g, metav1.CreateOptions{})
		return name, err
	}
	_, err := d.dask.KubernetesV1().DaskClusters(ns).Create(d.ctx, c, metav1.CreateOptions{})
	return name, err
}

// checkInvalid requires of every invalid object it was refused at
// admission, or it has a False condition and one event that say why.
func (d *driver) checkInvalid(ns, prefix string, n int, refused map[string]bool) []string {
	var out []string
	want := map[string]string{ // the condition that must be False, by kind
		"no-image": "ResourcesCreated", "selector-misses": "ServiceSelectsScheduler", "no-cluster": "ClusterFound",
	}
	for i := 0; i < n; i++ {
		kind := invalidKinds[i%len(invalidKinds)]
		name := fmt.Sprintf("%s-bad-%s-%d", prefix, kind, i)
		cond, ok := want[kind]
		if !ok {
			if !refused[name] {
				out = append(out, fmt.Sprintf("%s was not refused at admission", name))
			}
			continue
		}
		if refused[name] {
			out = append(out, fmt.Sprintf("%s was refused at admission; the operator should have told about it", name))
			continue
		}
		var problem string
		for poll := 0; poll < 50; poll++ {
			problem = d.toldAbout(ns, name, kind, cond)
			if problem == "" {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if problem != "" {
			out = append(out, problem)
		}
	}
	return out
}

func (d *driver) toldAbout(ns, name, kind, condType string) string {
	var conds []metav1.Condition
	var uid string
	if kind == "no-cluster" {
		g, err := d.dask.KubernetesV1().DaskWorkerGroups(ns).Get(d.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		conds, uid = g.Status.Conditions, string(g.UID)
	} else {
		c, err := d.dask.KubernetesV1().DaskClusters(ns).Get(d.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		conds, uid = c.Status.Conditions, string(c.UID)
	}
	found := false
	for _, c := range conds {
		if c.Type == condType && c.Status == metav1.ConditionFalse && c.Message != "" {
			found = true
		}
	}
	if !found {
		return fmt.Sprintf("%s (%s) has no False %s condition", name, kind, condType)
	}
	// By uid: the events of an earlier round's object of the same name
	// are still there.
	evs, err := d.kube.CoreV1().Events(ns).List(d.ctx, metav1.ListOptions{FieldSelector: "involvedObject.uid=" + uid})
	if err != nil {
		return err.Error()
	}
	total := int32(0)
	for _, e := range evs.Items {
		total += max(e.Count, 1)
	}
	if total != 1 {
		return fmt.Sprintf("%s (%s) has %d events, want exactly one", name, kind, total)
	}
	return ""
}

// outageCreation creates n clusters of one worker each, stops
// kube-apiserver for a while when about half of the creates are sent, and
// then requires every cluster to be Running with its worker Ready; then it
// deletes them and requires that nothing they made is left.
func (d *driver) outageCreation(r *FaultResult, n int) {
	if n <= 0 {
		return
	}
	r.Runs++
	ns := "outage"
	if _, err := d.kube.CoreV1().Namespaces().Create(d.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		r.Violations = append(r.Violations, "create namespace: "+err.Error())
		return
	}
	start := time.Now()
	var wg sync.WaitGroup
	half := make(chan struct{})
	var once sync.Once
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := faultCluster(ns)
			c.Name = fmt.Sprintf("o-%d", i)
			one := int32(1)
			c.Spec.Worker.Replicas = &one
			time.Sleep(time.Duration(i) * 20 * time.Millisecond) // a stream of creates
			if i == n/2 {
				once.Do(func() { close(half) })
			}
			// A create refused while the API server is down is sent again,
			// as any client would.
			for time.Since(start) < d.cfg.Timeout {
				_, err := d.dask.KubernetesV1().DaskClusters(ns).Create(d.ctx, c, metav1.CreateOptions{})
				if err == nil || apierrors.IsAlreadyExists(err) {
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}
	<-half
	down := d.cfg.APIDownMin + time.Duration(rand.Int64N(int64(d.cfg.APIDownMax-d.cfg.APIDownMin)+1))
	if err := d.env.Restart("kube-apiserver", down); err != nil {
		r.Violations = append(r.Violations, "restart kube-apiserver: "+err.Error())
	}
	wg.Wait()
	if d.op.exited() {
		r.Violations = append(r.Violations, "the operator exited while the API server was down")
		return
	}
	last, converged := "", false
	for !converged && time.Since(start) < d.cfg.Timeout {
		list, err := d.dask.KubernetesV1().DaskClusters(ns).List(d.ctx, metav1.ListOptions{})
		if err == nil {
			running := 0
			for _, c := range list.Items {
				if c.Status.Phase == daskv1.DaskClusterRunning && c.Status.ReadyReplicas == 1 {
					running++
				}
			}
			last = fmt.Sprintf("%d of %d clusters Running with their worker Ready", running, n)
			converged = running == n && len(list.Items) == n
		}
		if !converged {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if converged {
		r.Converged++
		r.Times = append(r.Times, time.Since(start))
	} else {
		r.Violations = append(r.Violations, "did not converge: "+last)
	}
	r.Violations = append(r.Violations, d.deleteAndCheckNothingLeft(ns)...)
}

// deleteAndCheckNothingLeft deletes every DaskCluster (and group: one of
// no cluster has no owner) of a namespace and requires that their Pods and
// Services go too.
func (d *driver) deleteAndCheckNothingLeft(ns string) []string {
	if err := d.dask.KubernetesV1().DaskClusters(ns).DeleteCollection(d.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return []string{"delete clusters: " + err.Error()}
	}
	if err := d.dask.KubernetesV1().DaskWorkerGroups(ns).DeleteCollection(d.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return []string{"delete groups: " + err.Error()}
	}
	start := time.Now()
	left := ""
	for time.Since(start) < d.cfg.Timeout {
		c, err1 := d.dask.KubernetesV1().DaskClusters(ns).List(d.ctx, metav1.ListOptions{})
		g, err2 := d.dask.KubernetesV1().DaskWorkerGroups(ns).List(d.ctx, metav1.ListOptions{})
		p, err3 := d.kube.CoreV1().Pods(ns).List(d.ctx, metav1.ListOptions{})
		s, err4 := d.kube.CoreV1().Services(ns).List(d.ctx, metav1.ListOptions{})
		if err1 == nil && err2 == nil && err3 == nil && err4 == nil {
			left = fmt.Sprintf("%d clusters, %d groups, %d Pods, %d Services left", len(c.Items), len(g.Items), len(p.Items), len(s.Items))
			if len(c.Items)+len(g.Items)+len(p.Items)+len(s.Items) == 0 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return []string{fmt.Sprintf("after deleting the clusters of %s: %s", ns, left)}
}

// nodeDeleted deletes the node that runs the workers, with the workers on
// it, after adding another: the Pod garbage collector deletes the Pods of
// the node that is gone (after its 40 s quarantine) and the operator
// replaces them on the new node. Those deletions are the fault's, not
// unretired scale-downs.
func (d *driver) nodeDeleted() (time.Time, error) {
	pods, err := d.fill(d.cfg.Scale)
	if err != nil {
		return time.Now(), err
	}
	list, err := d.kube.CoreV1().Pods(d.ns).List(d.ctx, metav1.ListOptions{LabelSelector: "dask.org/component=worker"})
	if err != nil {
		return time.Now(), err
	}
	byNode := map[string][]string{}
	for _, p := range list.Items {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p.Name)
	}
	old := ""
	for n, ps := range byNode {
		if old == "" || len(ps) > len(byNode[old]) {
			old = n
		}
	}
	d.nodes++
	if err := d.env.AddKwokNode(d.ctx, fmt.Sprintf("kwok-node-%d", d.nodes)); err != nil {
		return time.Now(), err
	}
	victims := byNode[old]
	d.w.injected(victims)
	start := time.Now()
	if err := d.kube.CoreV1().Nodes().Delete(d.ctx, old, metav1.DeleteOptions{}); err != nil {
		return start, err
	}
	for time.Since(start) < 2*time.Minute {
		left := 0
		for _, name := range victims {
			if _, err := d.kube.CoreV1().Pods(d.ns).Get(d.ctx, name, metav1.GetOptions{}); err == nil {
				left++
			}
		}
		if left == 0 {
			return start, nil
		}
		time.Sleep(time.Second)
	}
	return start, fmt.Errorf("the %d Pods of the deleted node %s (of %d workers) were not garbage collected within 2 minutes", len(victims), old, len(pods))
}
