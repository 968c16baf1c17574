// Package daskapi talks to a Dask scheduler's HTTP API (/api/v1/...), which
// Dask serves when distributed.scheduler.http.routes includes
// distributed.http.scheduler.api. Every call takes a context, whose deadline
// bounds it (DefaultTimeout when it has none): a slow scheduler must never
// hold up the operator, and a long retire must not be cut short.
package daskapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dask-operator/dask-operator/pkg/metrics"
)

// Target identifies the scheduler of one cluster.
type Target struct {
	Namespace string
	Cluster   string
	// Service is the scheduler Service's name.
	Service string
	// Port is the Service's dashboard (HTTP) port.
	Port int32
}

// Resolver turns a Target into the base URL of its scheduler's HTTP server
// (scheme, host and any path prefix, without /api/v1) and the HTTP client
// to reach it with.
type Resolver interface {
	Resolve(t Target) (baseURL string, client *http.Client, err error)
}

// ErrNotSupported means the scheduler does not serve the route (HTTP 404):
// an older Dask, or the API routes are not enabled.
var ErrNotSupported = errors.New("the scheduler does not serve this API route")

// Client calls the scheduler API.
type Client struct {
	resolver Resolver
}

// New returns a Client.
func New(r Resolver) *Client { return &Client{resolver: r} }

// Worker is a worker as the scheduler knows it.
type Worker struct {
	Name    string
	Address string
}

// RetireWorkers asks the scheduler to retire exactly the workers at these
// addresses (it moves their data to other workers first, and answers when it
// is done) and returns the workers it retired. Asking again for a worker that
// is being retired retires no other.
func (c *Client) RetireWorkers(ctx context.Context, t Target, addresses []string) ([]Worker, error) {
	if len(addresses) == 0 {
		return nil, nil
	}
	body, _ := json.Marshal(map[string][]string{"workers": addresses})
	var resp map[string]struct {
		Name json.RawMessage `json:"name"`
	}
	if err := c.do(ctx, t, http.MethodPost, "retire_workers", body, &resp); err != nil {
		var status *StatusError
		if !errors.As(err, &status) || status.Code < 500 {
			return nil, err
		}
		// Dask before 2025.9 can answer 500 after it retired the workers
		// (it could not encode its reply: dask/distributed#8996). Which
		// of them went is told by the scheduler's list of workers.
		return c.retiredAfterFailure(ctx, t, addresses, err)
	}
	out := make([]Worker, 0, len(resp))
	for addr, info := range resp {
		out = append(out, Worker{Name: nameString(info.Name), Address: addr})
	}
	return out, nil
}

// retiredAfterFailure lists the scheduler's workers after a retire that
// failed on the scheduler's side and returns those asked for that are gone
// (they were retired; their names are not told, their addresses are). When
// none is gone, or the list cannot be had, it returns the retire's error.
func (c *Client) retiredAfterFailure(ctx context.Context, t Target, addresses []string, retireErr error) ([]Worker, error) {
	known, err := c.GetWorkers(ctx, t)
	if err != nil {
		return nil, retireErr
	}
	present := make(map[string]bool, len(known))
	for _, w := range known {
		present[w.Address] = true
	}
	var gone []Worker
	for _, a := range addresses {
		if !present[a] {
			gone = append(gone, Worker{Address: a})
		}
	}
	if len(gone) == 0 {
		return nil, retireErr
	}
	return gone, nil
}

// AdaptiveTarget returns the number of workers the scheduler wants.
func (c *Client) AdaptiveTarget(ctx context.Context, t Target) (int, error) {
	var resp struct {
		Workers *int `json:"workers"`
	}
	if err := c.do(ctx, t, http.MethodGet, "adaptive_target", nil, &resp); err != nil {
		return 0, err
	}
	if resp.Workers == nil {
		return 0, fmt.Errorf("adaptive_target: response has no \"workers\"")
	}
	return *resp.Workers, nil
}

// CheckIdle returns since when the scheduler has been idle, or nil when it is busy.
func (c *Client) CheckIdle(ctx context.Context, t Target) (*time.Time, error) {
	var resp struct {
		IdleSince *float64 `json:"idle_since"`
	}
	if err := c.do(ctx, t, http.MethodGet, "check_idle", nil, &resp); err != nil {
		return nil, err
	}
	if resp.IdleSince == nil {
		return nil, nil
	}
	sec := *resp.IdleSince
	ts := time.Unix(int64(sec), int64((sec-float64(int64(sec)))*1e9))
	return &ts, nil
}

// GetWorkers lists the workers connected to the scheduler.
func (c *Client) GetWorkers(ctx context.Context, t Target) ([]Worker, error) {
	var resp struct {
		Workers []struct {
			Name    json.RawMessage `json:"name"`
			Address string          `json:"address"`
		} `json:"workers"`
	}
	if err := c.do(ctx, t, http.MethodGet, "get_workers", nil, &resp); err != nil {
		return nil, err
	}
	out := make([]Worker, 0, len(resp.Workers))
	for _, w := range resp.Workers {
		out = append(out, Worker{Name: nameString(w.Name), Address: w.Address})
	}
	return out, nil
}

// nameString renders a Dask worker name, which may be a string or a number.
func nameString(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// WorkerMemory returns the bytes of results each worker holds (Dask's
// managed_bytes), by worker address, from the scheduler's
// /json/identity.json (a default Dask route, not part of /api/v1).
func (c *Client) WorkerMemory(ctx context.Context, t Target) (map[string]int64, error) {
	var resp struct {
		Workers map[string]struct {
			Metrics struct {
				ManagedBytes *int64 `json:"managed_bytes"`
			} `json:"metrics"`
		} `json:"workers"`
	}
	if err := c.call(ctx, t, http.MethodGet, "identity", "/json/identity.json", nil, &resp); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(resp.Workers))
	for addr, w := range resp.Workers {
		if w.Metrics.ManagedBytes != nil {
			out[addr] = *w.Metrics.ManagedBytes
		}
	}
	return out, nil
}

func (c *Client) do(ctx context.Context, t Target, method, route string, body []byte, out any) error {
	return c.call(ctx, t, method, route, "/api/v1/"+route, body, out)
}

// call sends one request to path under the scheduler's base URL; route
// names it in metrics and errors.
func (c *Client) call(ctx context.Context, t Target, method, route, path string, body []byte, out any) (err error) {
	defer func() { metrics.SchedulerCalls.WithLabelValues(route, metrics.ResultLabel(err)).Inc() }()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	base, httpClient, err := c.resolver.Resolve(t)
	if err != nil {
		return err
	}
	url := strings.TrimSuffix(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, route, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, route, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s %s: %w", method, route, ErrNotSupported)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %w", method, route, &StatusError{Code: resp.StatusCode, Body: truncate(data, 200)})
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode %q: %w", method, route, truncate(data, 200), err)
	}
	return nil
}

// StatusError is an answer other than 200 OK (and 404, ErrNotSupported).
type StatusError struct {
	Code int
	Body string // its start
}

func (e *StatusError) Error() string { return "HTTP " + strconv.Itoa(e.Code) + ": " + e.Body }

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
