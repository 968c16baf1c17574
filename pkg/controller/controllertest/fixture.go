package controllertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/dask-operator/dask-operator/pkg/daskapi"
	daskfake "github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned/fake"
)

type Fixture struct {
	t    *testing.T
	Kube *kubefake.Clientset
	Dask *daskfake.Clientset
	// Base is what the controller under test is built on.
	Base  *controller.Base
	sched *httptest.Server
	Mu    sync.Mutex
	// Retire answers retire_workers, given the addresses asked for.
	Retire func(addresses []string) (int, string)
	// Workers is the scheduler's answer to get_workers; workersCode, when
	// set, its HTTP status instead.
	Workers     string
	WorkersCode int
	// Identity is the scheduler's /json/identity.json, when set.
	Identity string
	// Idle is the scheduler's answer to check_idle, when set; idleAsked
	// counts the questions.
	Idle      string
	IdleAsked int
	// recorder holds the events the controller recorded; seen, those read.
	recorder *record.FakeRecorder
	seen     []string
}

// NewFixture builds the Base of a controller on fake clientsets whose caches hold the
// given objects; nothing runs until a test calls a sync function. Its
// scheduler is an HTTP server the test scripts.
func NewFixture(t *testing.T, objs ...runtime.Object) *Fixture {
	f := &Fixture{t: t, Kube: kubefake.NewSimpleClientset(), Dask: daskfake.NewSimpleClientset()}
	f.sched = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.Mu.Lock()
		retire, workers, workersCode, identity, idle := f.Retire, f.Workers, f.WorkersCode, f.Identity, f.Idle
		if r.URL.Path == "/api/v1/check_idle" {
			f.IdleAsked++
		}
		f.Mu.Unlock()
		if r.URL.Path == "/api/v1/check_idle" && idle != "" {
			fmt.Fprint(w, idle)
			return
		}
		if r.URL.Path == "/json/identity.json" && identity != "" {
			fmt.Fprint(w, identity)
			return
		}
		if r.URL.Path == "/api/v1/get_workers" && workersCode != 0 {
			w.WriteHeader(workersCode)
			return
		}
		if r.URL.Path == "/api/v1/get_workers" && workers != "" {
			fmt.Fprint(w, workers)
			return
		}
		if r.URL.Path == "/api/v1/retire_workers" && retire != nil {
			var req struct {
				Workers []string `json:"workers"`
			}
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Workers) == 0 {
				t.Errorf("retire_workers must name its workers: %v %v", err, req)
			}
			code, body := retire(req.Workers)
			w.WriteHeader(code)
			fmt.Fprint(w, body)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(f.sched.Close)
	resolver, err := daskapi.NewTemplateResolver(f.sched.URL)
	require.NoError(t, err)
	f.recorder = record.NewFakeRecorder(1000)
	f.Base, err = controller.NewBase(f.Kube, f.Dask, controller.Options{Resolver: resolver, RetireFallbackAfter: -1}, f.recorder)
	require.NoError(t, err)
	for _, o := range objs {
		f.AddToCache(o)
	}
	return f
}

// WriteStatusAtOnce turns off the pacing of status writes, for tests of
// what a status says after one sync (the fixture's caches never see the
// controller's writes; pacing is tested on its own).
func (f *Fixture) WriteStatusAtOnce() { f.Base.StatusInterval = 0 }

func (f *Fixture) AddToCache(o runtime.Object) {
	s := f.Base.Caches.In("")
	var err error
	switch obj := o.(type) {
	case *daskv1.DaskCluster:
		err = s.Clusters.GetIndexer().Add(obj)
		_ = f.Dask.Tracker().Add(obj)
	case *daskv1.DaskWorkerGroup:
		err = s.Groups.GetIndexer().Add(obj)
		_ = f.Dask.Tracker().Add(obj)
	case *daskv1.DaskJob:
		err = s.Jobs.GetIndexer().Add(obj)
		_ = f.Dask.Tracker().Add(obj)
	case *daskv1.DaskAutoscaler:
		err = s.Autoscalers.GetIndexer().Add(obj)
		_ = f.Dask.Tracker().Add(obj)
	case *corev1.Pod:
		// As the informer's transform stores it.
		trimmed, _ := controller.TrimPod(obj.DeepCopy())
		err = s.Pods.GetIndexer().Add(trimmed)
		_ = f.Kube.Tracker().Add(obj)
	case *corev1.Service:
		err = s.Services.GetIndexer().Add(obj)
		_ = f.Kube.Tracker().Add(obj)
	case *appsv1.Deployment:
		err = s.Deployments.GetIndexer().Add(obj)
		_ = f.Kube.Tracker().Add(obj)
	case *appsv1.ReplicaSet:
		err = s.ReplicaSets.GetIndexer().Add(obj)
		_ = f.Kube.Tracker().Add(obj)
	default:
		f.t.Fatalf("unexpected %T", o)
	}
	require.NoError(f.t, err)
}

func (f *Fixture) Actions(verb, resource string) []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range append(f.Kube.Actions(), f.Dask.Actions()...) {
		if a.GetVerb() == verb && a.GetResource().Resource == resource && a.GetSubresource() == "" {
			out = append(out, a)
		}
	}
	return out
}

// CreatedPodNames are the names of the Pods the controller created.
func (f *Fixture) CreatedPodNames() []string {
	var out []string
	for _, a := range f.Actions("create", "pods") {
		out = append(out, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name)
	}
	return out
}

func (f *Fixture) ClearActions() {
	f.Kube.ClearActions()
	f.Dask.ClearActions()
}

// CountEvents counts the events of a reason recorded so far.
func CountEvents(f *Fixture, reason string) int {
	for {
		select {
		case e := <-f.recorder.Events:
			f.seen = append(f.seen, e)
			continue
		default:
		}
		break
	}
	n := 0
	for _, e := range f.seen {
		if strings.Contains(e, " "+reason+" ") {
			n++
		}
	}
	return n
}

func LastClusterStatus(t *testing.T, f *Fixture) daskv1.DaskClusterStatus {
	t.Helper()
	return LastStatusWrite[*daskv1.DaskCluster](t, f, "daskclusters").Status
}

// LastStatusWrite returns the object of the last status update of a
// resource (daskjobs, daskclusters, ...) the controller sent.
func LastStatusWrite[T runtime.Object](t *testing.T, f *Fixture, resource string) T {
	t.Helper()
	var out T
	found := false
	for _, a := range f.Dask.Actions() {
		if a.GetSubresource() == "status" && a.GetResource().Resource == resource {
			out, found = a.(k8stesting.UpdateAction).GetObject().(T), true
		}
	}
	require.True(t, found, "no %s status written", resource)
	return out
}

func DeletedNames(f *Fixture, resource string) []string {
	var out []string
	for _, a := range f.Actions("delete", resource) {
		out = append(out, a.(k8stesting.DeleteAction).GetName())
	}
	return out
}

// StatusWritesOf counts the status writes of a resource sent so far.
func StatusWritesOf(f *Fixture, resource string) int {
	n := 0
	for _, a := range f.Dask.Actions() {
		if a.GetSubresource() == "status" && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

// LastClusterStatusObject is the DaskCluster of the last status write.
func LastClusterStatusObject(t *testing.T, f *Fixture) *daskv1.DaskCluster {
	return LastStatusWrite[*daskv1.DaskCluster](t, f, "daskclusters")
}

func CreateCounts(f *Fixture) [3]int {
	return [3]int{len(f.Actions("create", "services")), len(f.Actions("create", "pods")), len(f.Actions("create", "daskworkergroups"))}
}

func Deletions(f *Fixture, resource string) []k8stesting.DeleteActionImpl {
	var out []k8stesting.DeleteActionImpl
	for _, a := range f.Actions("delete", resource) {
		out = append(out, a.(k8stesting.DeleteActionImpl))
	}
	return out
}
