package daskapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
)

func scheduler(t *testing.T, h http.HandlerFunc) (*Client, Target) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r, err := NewTemplateResolver(srv.URL)
	require.NoError(t, err)
	return New(r), Target{Namespace: "ns", Cluster: "c", Service: "c-scheduler", Port: 8787}
}

// Issue 15, item 1: a retire that takes longer than DefaultTimeout (Dask moves
// the workers' data before it answers) is not cut short when the caller's
// context allows more.
func TestRetireIsBoundedByItsContextNotByDefaultTimeout(t *testing.T) {
	t.Parallel()
	c, target := scheduler(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(DefaultTimeout + 500*time.Millisecond)
		_, _ = w.Write([]byte(`{"tcp://10.0.0.1:4000": {"name": "w1"}}`))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*DefaultTimeout)
	defer cancel()
	got, err := c.RetireWorkers(ctx, target, []string{"tcp://10.0.0.1:4000"})
	require.NoError(t, err)
	assert.Equal(t, []Worker{{Name: "w1", Address: "tcp://10.0.0.1:4000"}}, got)
}

// A call's context deadline bounds it.
func TestCallsEndAtTheirContextsDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	c, target := scheduler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetWorkers(ctx, target)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), DefaultTimeout)
}

// Issue 15, item 2: the workers to retire are named by address, so the
// scheduler cannot pick workers of another group.
func TestRetireNamesTheWorkers(t *testing.T) {
	t.Parallel()
	var body map[string]any
	c, target := scheduler(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/api/v1/retire_workers", r.URL.Path)
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		_, _ = w.Write([]byte(`{"tcp://10.0.0.1:4000": {"name": 7}}`))
	})
	got, err := c.RetireWorkers(context.Background(), target, []string{"tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"workers": []any{"tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000"}}, body)
	assert.Equal(t, []Worker{{Name: "7", Address: "tcp://10.0.0.1:4000"}}, got)
	_, hasN := body["n"]
	assert.False(t, hasN)
}

// The proxy resolver's client (the kubeconfig's transport) has no timeout
// of its own either.
func TestProxyResolverLeavesDeadlinesToTheContext(t *testing.T) {
	r, err := NewProxyResolver(&rest.Config{Host: "https://127.0.0.1:6443"})
	require.NoError(t, err)
	_, client, err := r.Resolve(Target{Namespace: "ns", Service: "s", Port: 8787})
	require.NoError(t, err)
	assert.Zero(t, client.Timeout)
	_, client, _ = DirectResolver{}.Resolve(Target{})
	assert.Zero(t, client.Timeout)
}

// Issue 28, item 4: distributed before 2025.9 can answer retire_workers
// with HTTP 500 after it has retired the workers. The workers that are gone
// from the scheduler's list count as retired; those still listed do not.
func TestRetireAnswered500CountsTheWorkersThatAreGone(t *testing.T) {
	t.Parallel()
	c, target := scheduler(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/retire_workers":
			http.Error(w, "500: Internal Server Error", http.StatusInternalServerError)
		case "/api/v1/get_workers":
			_, _ = w.Write([]byte(`{"num_workers": 1, "workers": [{"name": "w2", "address": "tcp://10.0.0.2:4000"}]}`))
		}
	})
	got, err := c.RetireWorkers(context.Background(), target, []string{"tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000"})
	require.NoError(t, err)
	assert.Equal(t, []Worker{{Address: "tcp://10.0.0.1:4000"}}, got)
}

// A failed retire after which every worker asked for is still there, a 4xx,
// or a scheduler that cannot list its workers any more, is a failure.
func TestRetireFailureWithTheWorkersStillThereIsAnError(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		retire, list int
	}{
		"500, all still listed": {http.StatusInternalServerError, http.StatusOK},
		"500, list fails":       {http.StatusInternalServerError, http.StatusBadGateway},
		"400":                   {http.StatusBadRequest, http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			listed := false
			c, target := scheduler(t, func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/api/v1/retire_workers":
					http.Error(w, "no", tc.retire)
				case "/api/v1/get_workers":
					listed = true
					w.WriteHeader(tc.list)
					_, _ = w.Write([]byte(`{"workers": [{"name": "w1", "address": "tcp://10.0.0.1:4000"}]}`))
				}
			})
			got, err := c.RetireWorkers(context.Background(), target, []string{"tcp://10.0.0.1:4000"})
			var status *StatusError
			require.ErrorAs(t, err, &status)
			assert.Equal(t, tc.retire, status.Code)
			assert.Empty(t, got)
			assert.Equal(t, tc.retire >= 500, listed)
		})
	}
}
