package workergroup

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// A create whose call failed may still have created the Pod: the API server
// was killed or the connection cut after the request was sent, or it timed
// out. Lowering the expectation at once (as for a refused create) would let
// the next sync, reading a cache that has not seen that Pod, create another:
// the over-creation the fault suite found after API server restarts. Such a
// name stays expected until a read from the API server says whether the Pod
// exists; worker names are chosen here, so the read is by name.

// uncertainWait is how long after an uncertain failure the Pod is looked
// for: a request the server was still handling when the call failed has
// ended by then.
const uncertainWait = 3 * time.Second

type uncertainCreates struct {
	mu    sync.Mutex
	names map[string]map[string]time.Time // key -> Pod name -> when its create failed
}

func newUncertainCreates() *uncertainCreates {
	return &uncertainCreates{names: map[string]map[string]time.Time{}}
}

func (u *uncertainCreates) add(key, name string, at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.names[key] == nil {
		u.names[key] = map[string]time.Time{}
	}
	u.names[key][name] = at
}

func (u *uncertainCreates) remove(key, name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.names[key], name)
	if len(u.names[key]) == 0 {
		delete(u.names, key)
	}
}

func (u *uncertainCreates) list(key string) map[string]time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]time.Time, len(u.names[key]))
	for n, at := range u.names[key] {
		out[n] = at
	}
	return out
}

func (u *uncertainCreates) forget(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.names, key)
}

// createMayHaveHappened tells a failed create call that may nevertheless
// have created the object from one the API server refused.
func createMayHaveHappened(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		// An answer: only these leave the outcome open. AlreadyExists, for a
		// name chosen here, is an earlier uncertain create that did happen.
		return apierrors.IsAlreadyExists(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
			apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
	}
	// No answer (a reset or closed connection, a timeout): unless the
	// connection was never made, the request may have reached the server.
	// A read settles it later, so erring this way costs only a delay.
	return !errors.Is(err, syscall.ECONNREFUSED)
}

// resolveUncertain reads, from the API server, the Pods whose creates ended
// uncertainly at least uncertainWait ago: a missing one will never come, so
// its expectation is lowered; one that exists is left to its add event. It
// returns when to look again (0: nothing uncertain is left).
func (c *Controller) resolveUncertain(ctx context.Context, key, ns string) time.Duration {
	var again time.Duration
	for name, at := range c.uncertain.list(key) {
		if wait := at.Add(uncertainWait).Sub(c.Now()); wait > 0 {
			again = controller.Soonest(again, wait)
			continue
		}
		_, err := c.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			klog.InfoS("A failed create did not create its Pod", "daskworkergroup", key, "pod", name)
			c.expect.CreationObserved(key, name)
			c.uncertain.remove(key, name)
		case err == nil:
			klog.InfoS("A failed create did create its Pod; waiting for it in the cache", "daskworkergroup", key, "pod", name)
			c.uncertain.remove(key, name)
		default:
			again = controller.Soonest(again, uncertainWait)
		}
	}
	return again
}
