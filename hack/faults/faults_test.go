package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// A short run of every fault, one round (make faults runs the full one):
// the operator keeps every invariant and converges each time.
func TestFaultsShort(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local control plane: not run with -short")
	}
	res, err := Run(Config{Rounds: 1, Scale: 60, Down: 5, Burst: 20, APIDownMin: 2 * time.Second, APIDownMax: 5 * time.Second, Timeout: 2 * time.Minute, BadInput: 10, Clusters: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + res.Markdown())
	for _, f := range res.Faults {
		if f.Runs == 0 {
			t.Errorf("%s: never run", f.Name)
		}
		if f.Converged != f.Runs {
			t.Errorf("%s: converged %d of %d times", f.Name, f.Converged, f.Runs)
		}
		for _, v := range f.Violations {
			t.Errorf("%s: %s", f.Name, v)
		}
	}
}

// The invariant checks can fail: an extra Pod and a Ready worker deleted
// without a retire are both caught; a retired or fault-deleted one is not.
func TestWatcherCatchesViolations(t *testing.T) {
	sched, err := testenv.NewFakeScheduler(kubefake.NewClientset(), "dask.org/component=worker")
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	w := &watcher{sched: sched, live: map[string]bool{}, ready: map[string]bool{}, deleted: map[string]bool{},
		node: map[string]string{}, phase: map[string]string{}, schedulers: map[string]string{}, ended: map[string]bool{}}
	pod := func(name string, ready bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		return p
	}
	w.setDesired(1)
	w.seen(pod("a", true))
	if v := w.takeViolations(); len(v) != 0 {
		t.Fatalf("one Pod of one asked for: %v", v)
	}
	w.seen(pod("b", true))
	if v := w.takeViolations(); len(v) != 1 {
		t.Fatalf("a second Pod of one asked for must be caught: %v", v)
	}
	w.gone("a")
	unretired := w.takeUnretired()
	if len(unretired) != 1 {
		t.Fatalf("a Ready worker deleted without a retire must be caught: %v", unretired)
	}
	// Only the documented fallback, with its event counting the Pod, excuses it.
	kube := kubefake.NewClientset()
	d := &driver{ctx: context.Background(), kube: kube, ns: "ns", eventPolls: 1}
	if v := d.unannouncedFallbacks(unretired); len(v) != 1 {
		t.Fatalf("without a FallbackScaleDown event: %v", v)
	}
	_, err = kube.CoreV1().Events("ns").Create(context.Background(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "e", Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Name: groupName}, Reason: "FallbackScaleDown",
		Message: "Scheduler unreachable for 10s: deleted 1 running workers without retiring them: a",
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := d.unannouncedFallbacks(unretired); len(v) != 0 {
		t.Fatalf("the fallback's event counts it: %v", v)
	}
	w.injected([]string{"b"})
	w.gone("b")
	if v := w.takeViolations(); len(v) != 0 {
		t.Fatalf("a Pod the fault deleted is no violation: %v", v)
	}
	// A worker that ended (Failed) is replaced, as a ReplicaSet does: its
	// replacement is not over-creation, and its end not an unretired deletion.
	failed := pod("c", false)
	failed.Status.Phase = corev1.PodFailed
	w.seen(failed)
	w.seen(pod("d", true))
	w.seen(pod("c", true)) // kwok on a deleted node sets it Running again
	w.gone("c")
	if v := w.takeViolations(); len(v) != 0 {
		t.Fatalf("the replacement of a Failed Pod is no over-creation: %v", v)
	}
	if u := w.takeUnretired(); len(u) != 0 {
		t.Fatalf("an ended Pod was not deleted by the operator: %v", u)
	}
	// Two scheduler Pods of one cluster at once are caught; a replacement
	// after the first ended is not.
	schedPod := func(name string) *corev1.Pod {
		p := pod(name, true)
		p.Labels = map[string]string{"dask.org/cluster-name": "f"}
		return p
	}
	w.scheduler(schedPod("f-scheduler"), false)
	w.scheduler(schedPod("f-scheduler-adopted"), false)
	if v := w.takeViolations(); len(v) != 1 {
		t.Fatalf("two schedulers of one cluster must be caught: %v", v)
	}
	w.scheduler(schedPod("f-scheduler-adopted"), true)
	ended := schedPod("f-scheduler")
	ended.Status.Phase = corev1.PodFailed
	w.scheduler(ended, false)
	w.scheduler(schedPod("f-scheduler"), false)
	if v := w.takeViolations(); len(v) != 0 {
		t.Fatalf("a scheduler replacing an ended one is no violation: %v", v)
	}
}

// The audit-log check of the leader faults can fail: a write the stale
// replica sent after the takeover is reported, its Lease updates and its
// writes before the takeover are not, and the new leader's are counted,
// its Lease renewals among them.
func TestAuditCheckCatchesWritesFromAStaleLeader(t *testing.T) {
	since := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	line := func(ua, resource, verb string, at time.Time) string {
		return `{"kind":"Event","verb":"` + verb + `","userAgent":"` + ua + `","requestURI":"/api/v1/namespaces/f/` + resource +
			`","objectRef":{"resource":"` + resource + `"},"responseStatus":{"code":201},"requestReceivedTimestamp":"` + at.Format(time.RFC3339Nano) + `"}`
	}
	log := strings.Join([]string{
		line("dask-operator (old_1)", "pods", "create", since.Add(-time.Second)),
		line("dask-operator (old_1)", "leases", "update", since.Add(time.Second)),
		line("dask-operator (new_2)", "pods", "create", since.Add(time.Second)),
		line("dask-operator (new_2)", "leases", "update", since.Add(time.Second)),
		line("dask-operator (old_1)", "pods", "delete", since.Add(2*time.Second)),
	}, "\n")
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(log+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writes, others, err := writesAfter(path, "old_1", "new_2", since)
	if err != nil {
		t.Fatal(err)
	}
	if len(writes) != 1 || !strings.HasPrefix(writes[0], "delete /api/v1/namespaces/f/pods (201)") {
		t.Errorf("stale writes: %v, want the one delete", writes)
	}
	if others != 2 {
		t.Errorf("the new leader's writes: %d, want 2", others)
	}
}
