package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// FakeScheduler answers the Dask scheduler's HTTP API at once, for tests and
// benchmarks whose Pods do not run (kwok): every worker Pod that selector
// matches, and that is not being deleted, is a registered worker named after
// its Pod at tcp://<pod>:1, and retire_workers retires the workers it is
// given. It remembers which workers it retired.
type FakeScheduler struct {
	srv      *http.Server
	Port     int
	kube     kubernetes.Interface
	selector string

	mu      sync.Mutex
	retired map[string]bool
	fault   SchedulerFault
}

// SchedulerFault is how a FakeScheduler misbehaves.
type SchedulerFault string

// The faults a FakeScheduler can show.
const (
	SchedulerHealthy SchedulerFault = ""
	// SchedulerErrors answers retire_workers with HTTP 500.
	SchedulerErrors SchedulerFault = "answers 500"
	// SchedulerGarbage answers every call with 200 and no JSON.
	SchedulerGarbage SchedulerFault = "answers garbage"
	// SchedulerSlow answers retire_workers after 30 s (moving data).
	SchedulerSlow SchedulerFault = "answers after 30 s"
	// SchedulerBlackHole accepts requests and never answers.
	SchedulerBlackHole SchedulerFault = "black-holed"
)

// SetFault makes the scheduler misbehave from now on (SchedulerHealthy
// ends it).
func (f *FakeScheduler) SetFault(fault SchedulerFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
}

func (f *FakeScheduler) currentFault() SchedulerFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fault
}

// NewFakeScheduler serves on a free loopback port.
func NewFakeScheduler(kube kubernetes.Interface, selector string) (*FakeScheduler, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &FakeScheduler{Port: l.Addr().(*net.TCPAddr).Port, kube: kube, selector: selector, retired: map[string]bool{}}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go func() { _ = f.srv.Serve(l) }()
	return f, nil
}

// URL is the scheduler's base URL (for --scheduler-url-template).
func (f *FakeScheduler) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", f.Port) }

// Close stops serving.
func (f *FakeScheduler) Close() { _ = f.srv.Close() }

// Retired tells whether the worker of a Pod was retired.
func (f *FakeScheduler) Retired(pod string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.retired[pod]
}

func (f *FakeScheduler) workers(r *http.Request) []string {
	pods, err := f.kube.CoreV1().Pods("").List(r.Context(), metav1.ListOptions{LabelSelector: f.selector, ResourceVersion: "0"})
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

func (f *FakeScheduler) serve(w http.ResponseWriter, r *http.Request) {
	retire := r.URL.Path == "/api/v1/retire_workers"
	switch fault := f.currentFault(); {
	case fault == SchedulerBlackHole:
		<-r.Context().Done() // until the caller gives up
		return
	case fault == SchedulerGarbage:
		_, _ = w.Write([]byte("<html>not the API"))
		return
	case fault == SchedulerErrors && retire:
		http.Error(w, "retire failed", http.StatusInternalServerError)
		return
	case fault == SchedulerSlow && retire:
		select {
		case <-time.After(30 * time.Second):
		case <-r.Context().Done():
			return
		}
	}
	switch r.URL.Path {
	case "/api/v1/get_workers":
		var ws []map[string]string
		for _, n := range f.workers(r) {
			ws = append(ws, map[string]string{"name": n, "address": "tcp://" + n + ":1"})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"workers": ws})
	case "/api/v1/retire_workers":
		var body struct{ Workers []string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		known := map[string]bool{}
		for _, n := range f.workers(r) {
			known["tcp://"+n+":1"] = true
		}
		out := map[string]map[string]string{}
		f.mu.Lock()
		for _, addr := range body.Workers {
			if known[addr] {
				name := strings.TrimSuffix(strings.TrimPrefix(addr, "tcp://"), ":1")
				out[addr] = map[string]string{"name": name}
				f.retired[name] = true
			}
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}
