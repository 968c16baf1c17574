package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// apiRoutes turns on the scheduler's HTTP API, which the operator uses.
const apiRoutes = `["distributed.http.scheduler.api", "distributed.http.health", "distributed.http.scheduler.prometheus"]`

// daskScheduler is a real Dask scheduler on loopback.
type daskScheduler struct {
	CommPort, HTTPPort int
	cmd                *exec.Cmd
}

func (s *daskScheduler) Address() string { return fmt.Sprintf("tcp://127.0.0.1:%d", s.CommPort) }
func (s *daskScheduler) URL() string     { return fmt.Sprintf("http://127.0.0.1:%d", s.HTTPPort) }

func requireDask(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/dask-scheduler"); err != nil {
		t.Fatal("a real Dask is needed: apt-get install python3-distributed (.ci/run does)")
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startProcess(t *testing.T, logName string, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	log, err := os.Create(filepath.Join(t.TempDir(), logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

func startDaskScheduler(t *testing.T) *daskScheduler {
	t.Helper()
	requireDask(t)
	s := &daskScheduler{CommPort: freePort(t), HTTPPort: freePort(t)}
	s.cmd = startProcess(t, "scheduler.log", []string{"DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES=" + apiRoutes},
		"/usr/bin/dask-scheduler", "--host", "127.0.0.1", "--port", strconv.Itoa(s.CommPort),
		"--dashboard-address", "127.0.0.1:"+strconv.Itoa(s.HTTPPort))
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	t.Cleanup(func() { killGroup(s.cmd); <-done })
	eventually(t, 60*time.Second, func() (bool, string) {
		resp, err := http.Get(s.URL() + "/api/v1")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return s
}

type daskWorker struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	// killed is set when the test stopped the process; a process that ends
	// without it was closed by the scheduler.
	killed bool
}

func (w *daskWorker) kill() {
	w.mu.Lock()
	w.killed = true
	w.mu.Unlock()
	killGroup(w.cmd)
}

// exitedByItself reports whether the worker process ended without the test killing it.
func (w *daskWorker) exitedByItself() bool {
	select {
	case <-w.done:
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.killed
	default:
		return false
	}
}

// startDaskWorker runs a real worker, without a nanny, so that a worker the
// scheduler retires ends instead of being restarted.
func startDaskWorker(t *testing.T, s *daskScheduler, name string) *daskWorker {
	t.Helper()
	w := &daskWorker{Name: name, done: make(chan struct{})}
	w.cmd = startProcess(t, "worker-"+name+".log", nil, "/usr/bin/dask-worker", s.Address(),
		"--name", name, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard")
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { w.kill(); <-w.done })
	return w
}

func schedulerWorkers(t *testing.T, s *daskScheduler) []string {
	t.Helper()
	resp, err := http.Get(s.URL() + "/api/v1/get_workers")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Workers []struct {
			Name string `json:"name"`
		} `json:"workers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil
	}
	var names []string
	for _, w := range body.Workers {
		names = append(names, w.Name)
	}
	sort.Strings(names)
	return names
}

func postJSON(ctx context.Context, url, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, stringsReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
