package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// writeFence lets the controllers write to the API server only while this
// replica's last renewal of the Lease is younger than the renew deadline.
// Losing the Lease cancels the controllers' context, but a process that was
// paused (SIGSTOP, a frozen VM, a long GC pause) wakes up with goroutines in
// the middle of a sync that can send a write before the elector notices: the
// fence refuses it, since another replica may lead by then. Followers never
// write either. A renewal counts from when it was sent, and the renew
// deadline is shorter than the lease duration, so a fenced write is never
// sent once another replica can have taken the Lease (clocks tick at the
// same rate on one machine; across machines, the lease duration minus the
// renew deadline is the tolerated skew in rate).
type writeFence struct {
	window time.Duration

	mu      sync.Mutex
	renewed time.Time // with its monotonic reading
}

func newWriteFence(window time.Duration) *writeFence { return &writeFence{window: window} }

func (f *writeFence) renew(sent time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sent.After(f.renewed) {
		f.renewed = sent
	}
}

// check returns an error unless a write may be sent now.
func (f *writeFence) check(now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.renewed.IsZero() {
		return fmt.Errorf("not the leader: writes are refused until this replica holds the Lease")
	}
	if age := now.Sub(f.renewed); age >= f.window {
		return fmt.Errorf("not the leader: the Lease was last renewed %s ago (renew deadline %s); write refused", age.Round(time.Millisecond), f.window)
	}
	return nil
}

// wrap is a rest.Config WrapTransport: reads pass, writes only through the
// fence.
func (f *writeFence) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if err := f.check(time.Now()); err != nil {
				return nil, err
			}
		}
		return rt.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fencedLock is a Lease lock that renews the fence on each successful
// acquisition or renewal.
type fencedLock struct {
	resourcelock.Interface
	fence *writeFence
}

func (l *fencedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	err := l.Interface.Create(ctx, ler)
	if err == nil {
		l.fence.renew(sent)
	}
	return err
}

func (l *fencedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	err := l.Interface.Update(ctx, ler)
	if err == nil && ler.HolderIdentity == l.Identity() {
		l.fence.renew(sent)
	}
	return err
}
