package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func plugin(t *testing.T, args ...string) string {
	t.Helper()
	res := env.Plugin(t, args...)
	require.Equal(t, 0, res.Code, "kubectl dask %s:\n%s%s", strings.Join(args, " "), res.Stdout, res.Stderr)
	return res.Stdout
}

// breakableProxy passes TCP connections on to an address until told to
// break every connection it carries: a network that drops them.
type breakableProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newBreakableProxy(t *testing.T, upstream string) *breakableProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &breakableProxy{l: l}
	t.Cleanup(func() { l.Close(); p.breakAll() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *breakableProxy) breakAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return n / 2
}

// kubeconfigThrough writes a copy of the environment's kubeconfig whose
// server is reached through a breakable proxy.
func kubeconfigThrough(t *testing.T) (string, *breakableProxy) {
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	require.NoError(t, err)
	var proxy *breakableProxy
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		require.NoError(t, err)
		proxy = newBreakableProxy(t, u.Host)
		u.Host = proxy.l.Addr().String()
		c.Server = u.String()
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path, proxy
}

// compute runs a Dask client on the host, with the Dask of the latest image
// (the plugin's default), against addr and returns what it printed.
func compute(t *testing.T, addr string) (string, error) {
	argv := env.EnterArgs(env.Latest(), nil, "/usr/bin/python3", "-c",
		`from dask.distributed import Client; c = Client("`+addr+`", timeout=20); print(c.submit(sum, range(10)).result())`)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// port-forward carries Dask connections and the dashboard, and comes back
// on the same address within seconds when its connection is cut.
func TestPluginPortForwardReconnects(t *testing.T) {
	ns := newNamespace(t)
	plugin(t, "-n", ns, "create", "cluster", "pf", "--workers", "1", "--wait", "--timeout", "3m")
	ip := schedulerIP(t, ns, "pf")
	waitRegistered(t, ns, "pf", "pf-default", ip, 1, 2*time.Minute)

	kc, proxy := kubeconfigThrough(t)
	logPath := filepath.Join(t.TempDir(), "forward.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close()
	fwd := exec.Command(testenv.PluginBinary(t), "--kubeconfig", kc, "-n", ns, "port-forward", "pf")
	fwd.Stdout, fwd.Stderr = logFile, logFile
	fwd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, fwd.Start())
	exited := make(chan error, 1)
	go func() { exited <- fwd.Wait() }()
	t.Cleanup(func() { _ = fwd.Process.Kill() })

	addrLine := regexp.MustCompile(`(?m)^scheduler: (tcp://127\.0\.0\.1:\d+)$`)
	dashLine := regexp.MustCompile(`(?m)^dashboard: (http://127\.0\.0\.1:\d+/status)$`)
	var addr, dash string
	eventually(t, 30*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(logPath)
		if m := addrLine.FindSubmatch(data); m != nil {
			addr = string(m[1])
		}
		if m := dashLine.FindSubmatch(data); m != nil {
			dash = string(m[1])
		}
		return addr != "" && dash != "", "port-forward printed:\n" + string(data)
	})
	out, err := compute(t, addr)
	require.NoError(t, err, out)
	assert.Equal(t, "45", out)
	resp, err := http.Get(dash)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the dashboard answers")

	require.Positive(t, proxy.breakAll(), "the forward's connections are cut")
	start := time.Now()
	eventually(t, 20*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), "restored on the same ports"), "no reconnect yet:\n" + string(data)
	})
	out, err = compute(t, addr)
	require.NoError(t, err, out)
	assert.Equal(t, "45", out, "the same address works again")
	t.Logf("address working again %s after the cut", time.Since(start).Round(time.Millisecond))

	// A replaced scheduler Pod: the forward follows it on the same address.
	env.Kubectl(t, "", "delete", "pod", "-n", ns, "pf-scheduler", "--wait=true")
	eventually(t, 2*time.Minute, func() (bool, string) {
		out, err := compute(t, addr)
		return err == nil && out == "45", "the forward does not reach the new scheduler yet: " + out
	})

	require.NoError(t, fwd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		assert.NoError(t, err, "Ctrl-C ends port-forward cleanly")
	case <-time.After(10 * time.Second):
		t.Fatal("port-forward did not stop on Ctrl-C")
	}
}

// logs prints the cluster's Pod logs prefixed by Pod, per role, and follows.
func TestPluginLogs(t *testing.T) {
	ns := newNamespace(t)
	plugin(t, "-n", ns, "create", "cluster", "lg", "--workers", "1", "--wait", "--timeout", "3m")
	ip := schedulerIP(t, ns, "lg")
	workers := waitRegistered(t, ns, "lg", "lg-default", ip, 1, 2*time.Minute)

	var out string
	eventually(t, 30*time.Second, func() (bool, string) {
		out = plugin(t, "-n", ns, "logs", "lg", "--scheduler")
		return strings.Contains(out, "Scheduler at"), out
	})
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.True(t, strings.HasPrefix(line, "[lg-scheduler] "), "%q", line)
	}
	out = plugin(t, "-n", ns, "logs", "lg", "--workers")
	assert.Contains(t, out, "["+workers[0]+"] ")
	assert.NotContains(t, out, "[lg-scheduler]")
	all := plugin(t, "-n", ns, "logs", "lg")
	assert.Contains(t, all, "[lg-scheduler] ")
	assert.Contains(t, all, "["+workers[0]+"] ")
	assert.Contains(t, plugin(t, "-n", ns, "logs", "lg", "--group", "default"), "["+workers[0]+"] ")

	// -f keeps streaming: a new worker's lines arrive.
	follow := exec.Command(testenv.PluginBinary(t), "--kubeconfig", env.Kubeconfig, "-n", ns, "logs", "lg", "--scheduler", "-f")
	stdout, err := follow.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, follow.Start())
	t.Cleanup(func() { _ = follow.Process.Kill(); _ = follow.Wait() })
	lines := make(chan string, 1000)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	time.Sleep(time.Second)
	plugin(t, "-n", ns, "scale", "lg", "2")
	deadline := time.After(time.Minute)
	for found := false; !found; {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "logs -f ended")
			found = strings.HasPrefix(l, "[lg-scheduler] ") && strings.Contains(l, "Register worker") && !strings.Contains(l, workers[0])
		case <-deadline:
			t.Fatal("logs -f showed no new worker registering")
		}
	}
}

// A DaskJob from the command line, on real Dask: the script given with
// --file runs against the job's cluster, job wait returns its end, and
// job logs prints what it printed.
func TestPluginJobRuns(t *testing.T) {
	ns := newNamespace(t)
	script := filepath.Join(t.TempDir(), "answer.py")
	require.NoError(t, os.WriteFile(script, []byte(`from dask.distributed import Client
c = Client(timeout=60)
print("answer", c.submit(sum, range(10)).result(), flush=True)
`), 0o644))
	out := plugin(t, "-n", ns, "job", "submit", "answer", "--file", script, "--workers", "1", "--wait", "--timeout", "4m", "--", "python", "answer.py")
	assert.Contains(t, out, "daskjob.kubernetes.dask.org/answer Successful")
	assert.Contains(t, plugin(t, "-n", ns, "job", "logs", "answer"), "[answer-runner] answer 45")
	assert.Contains(t, plugin(t, "-n", ns, "job", "wait", "answer"), "Successful")

	failing := filepath.Join(t.TempDir(), "fail.py")
	require.NoError(t, os.WriteFile(failing, []byte("raise SystemExit(3)\n"), 0o644))
	res := env.Plugin(t, "-n", ns, "job", "submit", "broken", "--file", failing, "--workers", "1", "--backoff-limit", "0",
		"--wait", "--timeout", "4m", "--", "python", "fail.py")
	assert.NotEqual(t, 0, res.Code, "a failed job exits non-zero")
	assert.Contains(t, res.Stderr, `daskjob "broken" failed`)
}

// `kubectl dask create cluster` builds what the Python client's
// `dask kubernetes gen cluster` (make_cluster_spec) builds, but for the
// commands: `dask scheduler` / `dask worker`, where the client's
// dask-scheduler / dask-worker are gone from Dask 2026.6 on.
func TestPluginSpecMatchesTheClients(t *testing.T) {
	incumbent := testenv.IncumbentDir(t)
	gen := exec.Command("/bin/bash", "-c", `. "$1/env.sh" && exec /usr/bin/python3 -c 'import sys; from dask_kubernetes.cli.cli import main; sys.argv = ["dask", "gen", "cluster", "--name", "same", "--n-workers", "2", "--image", "ghcr.io/dask/dask:2099.1.0", "--env", "A=1"]; main()'`,
		"bash", incumbent)
	want, err := gen.Output()
	require.NoError(t, err, "dask kubernetes gen cluster")
	got := plugin(t, "create", "cluster", "same", "--workers", "2", "--image", "ghcr.io/dask/dask:2099.1.0", "--env", "A=1", "--dry-run=client", "-o", "yaml")
	wantSpec := normalized(t, want).(map[string]any)
	spec := wantSpec["spec"].(map[string]any)
	for role, old := range map[string]string{"scheduler": "dask-scheduler", "worker": "dask-worker"} {
		c := spec[role].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		args := c["args"].([]any)
		require.Equal(t, old, args[0], "the client's %s command", role)
		c["args"] = append([]any{"dask", role}, args[1:]...)
	}
	assert.Equal(t, wantSpec, normalized(t, []byte(got)))
}

// normalized drops what means nothing in a manifest: null, zero and false
// values (the defaults), empty maps, and a namespace (gen cluster sets none).
func normalized(t *testing.T, data []byte) any {
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	var clean func(any) any
	clean = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, val := range x {
				c := clean(val)
				if m, ok := c.(map[string]any); c == nil || ok && len(m) == 0 || c == false || c == float64(0) || c == int64(0) || c == 0 {
					continue
				}
				out[k] = c
			}
			return out
		case []any:
			for i := range x {
				x[i] = clean(x[i])
			}
			return x
		}
		return v
	}
	out := clean(v).(map[string]any)
	if md, ok := out["metadata"].(map[string]any); ok {
		delete(md, "namespace")
	}
	return out
}

// dashboard forwards the dashboard (and scheduler) like port-forward, on
// the ports asked for; --open without a browser says so and goes on.
func TestPluginDashboard(t *testing.T) {
	ns := newNamespace(t)
	plugin(t, "-n", ns, "create", "cluster", "db", "--workers", "1", "--wait", "--timeout", "3m")
	port := freeLocalPort(t)
	logPath := filepath.Join(t.TempDir(), "dashboard.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close()
	cmd := exec.Command(testenv.PluginBinary(t), "--kubeconfig", env.Kubeconfig, "-n", ns, "dashboard", "db", "--open", "--dashboard-port", port)
	cmd.Env = append(os.Environ(), "PATH=/nonexistent")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	want := "http://127.0.0.1:" + port + "/status"
	eventually(t, 30*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), "dashboard: "+want) && strings.Contains(string(data), "cannot open a browser"), string(data)
	})
	resp, err := http.Get(want)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func freeLocalPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
