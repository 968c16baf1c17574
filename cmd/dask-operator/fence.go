package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/dask-operator/dask-operator/pkg/daskapi"
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

// open returns until when a write may be sent (the last renewal plus the
// renew deadline), or an error if not now.
func (f *writeFence) open(now time.Time) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.renewed.IsZero() {
		return time.Time{}, fmt.Errorf("not the leader: writes are refused until this replica holds the Lease")
	}
	if age := now.Sub(f.renewed); age >= f.window {
		return time.Time{}, fmt.Errorf("not the leader: the Lease was last renewed %s ago (renew deadline %s); write refused", age.Round(time.Millisecond), f.window)
	}
	return f.renewed.Add(f.window), nil
}

// wrap is a rest.Config WrapTransport: reads pass, writes only through the
// fence. A write that passed carries the fence's closing time as its
// deadline: one still waiting inside the HTTP transport when the process
// was paused (for a connection, a stream, the connection's header lock) is
// abandoned on waking rather than sent late. The fault suite found 18
// deletes sent that way after a takeover. One already being written to the
// socket when the process froze cannot be recalled by any client.
func (f *writeFence) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			until, err := f.open(time.Now())
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithDeadline(req.Context(), until)
			resp, err := rt.RoundTrip(req.WithContext(ctx))
			if err != nil {
				cancel()
				if errors.Is(ctx.Err(), context.DeadlineExceeded) && req.Context().Err() == nil {
					return nil, fmt.Errorf("not the leader: the write was still unsent when the Lease renewal it relied on expired: %w", err)
				}
				return nil, err
			}
			// The body is read after RoundTrip returns: the deadline ends
			// with it.
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		return rt.RoundTrip(req)
	})
}

// fencedResolver sends scheduler calls only while the fence is open: a
// replica that lost the Lease (or was paused past it) asks no scheduler to
// retire workers, whichever way it reaches schedulers. Unlike writes to the
// API server, a call that passed carries no deadline from the fence: a retire
// takes as long as Dask needs to move the workers' data (--retire-timeout),
// and a healthy leader renews its Lease meanwhile.
type fencedResolver struct {
	daskapi.Resolver
	fence   *writeFence
	clients sync.Map // *http.Client -> its fenced copy
}

func (r *fencedResolver) Resolve(t daskapi.Target) (string, *http.Client, error) {
	base, c, err := r.Resolver.Resolve(t)
	if err != nil || c == nil {
		return base, c, err
	}
	if fenced, ok := r.clients.Load(c); ok {
		return base, fenced.(*http.Client), nil
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	fenced := &http.Client{Transport: roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if _, err := r.fence.open(time.Now()); err != nil {
			return nil, fmt.Errorf("scheduler call refused: %w", err)
		}
		return rt.RoundTrip(req)
	}), Timeout: c.Timeout, Jar: c.Jar, CheckRedirect: c.CheckRedirect}
	actual, _ := r.clients.LoadOrStore(c, fenced)
	return base, actual.(*http.Client), nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
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
