package main

import (
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
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// podRuntime is one pod on this node: its network namespace and the process
// of its first container, restarted as its restartPolicy says.
type podRuntime struct {
	key   string
	uid   types.UID
	index int // address index on the bridge
	ip    string
	dir   string // HOME and TMPDIR of the process, and its working directory unless workDir is set
	hosts string // last hosts file written
	// workDir is the working directory when the container's workingDir is
	// the mount path of a ConfigMap volume (see configMapVolumes).
	workDir string

	argv    []string
	env     []string
	probe   *probeTarget
	initial time.Duration // readiness probe's initial delay
	period  time.Duration // readiness probe period

	mu         sync.Mutex
	cmd        *exec.Cmd
	running    bool
	ready      bool
	startedAt  time.Time
	restarts   int32
	lastExit   *exitInfo // the last run that ended
	nextStart  time.Time // backoff before the next restart
	generation int       // bumped on every start, so old probes and waiters step aside
	stopped    bool
}

type exitInfo struct {
	code       int32
	reason     string
	startedAt  time.Time
	finishedAt time.Time
}

// start runs the process in the pod's namespace, in its own process group,
// and calls changed when it exits or its readiness changes.
func (r *podRuntime) start(netns string, changed func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return fmt.Errorf("pod is stopping")
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "tmp"), 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(r.dir, "container.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", netns}, r.argv...)...)
	cmd.Env = r.env
	cmd.Dir = r.dir
	if r.workDir != "" {
		cmd.Dir = r.workDir
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group, so that stopping reaches the process's children
	// (a dask-worker's nanny starts the worker as a child); killed with the
	// agent should the agent die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		r.lastExit = &exitInfo{code: 128, reason: "StartError", startedAt: time.Now(), finishedAt: time.Now()}
		return fmt.Errorf("start %v: %w", r.argv, err)
	}
	r.generation++
	gen := r.generation
	r.cmd, r.running, r.ready, r.startedAt = cmd, true, r.probe == nil, time.Now()
	go func() {
		err := cmd.Wait()
		logFile.Close()
		code := int32(0)
		reason := "Completed"
		if err != nil {
			reason = "Error"
			code = 1
			if ee, ok := err.(*exec.ExitError); ok {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int32(ws.Signal())
				} else {
					code = int32(ee.ExitCode())
				}
			}
		}
		// What the process left behind in its group goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		r.mu.Lock()
		if r.generation == gen {
			r.running, r.ready = false, false
			r.lastExit = &exitInfo{code: code, reason: reason, startedAt: r.startedAt, finishedAt: time.Now()}
		}
		r.mu.Unlock()
		changed()
	}()
	if r.probe != nil {
		go r.probeLoop(gen, changed)
	}
	return nil
}

// probeLoop runs the readiness probe against the pod's address until the
// process of this generation ends.
func (r *podRuntime) probeLoop(gen int, changed func()) {
	time.Sleep(r.initial)
	client := &http.Client{Timeout: time.Second}
	addr := net.JoinHostPort(r.ip, strconv.Itoa(r.probe.port))
	for {
		ok := false
		if r.probe.http {
			resp, err := client.Get("http://" + addr + r.probe.path)
			if err == nil {
				resp.Body.Close()
				ok = resp.StatusCode >= 200 && resp.StatusCode < 400
			}
		} else if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			ok = true
		}
		r.mu.Lock()
		if r.generation != gen || !r.running || r.stopped {
			r.mu.Unlock()
			return
		}
		flipped := r.ready != ok
		r.ready = ok
		r.mu.Unlock()
		if flipped {
			changed()
		}
		time.Sleep(r.period)
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then kills
// what is left. It does not remove the namespace.
func (r *podRuntime) stop(grace time.Duration) {
	r.mu.Lock()
	r.stopped = true
	cmd, running := r.cmd, r.running
	r.mu.Unlock()
	if cmd == nil || !running {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		running = r.running
		r.mu.Unlock()
		if !running {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// environ is the process environment: a PATH where the image's Dask is
// found (with `python` meaning python3), HOME and TMPDIR in the pod's
// folder, the agent's defaults, the service links, then the container's env.
func environ(podName, dir, shimDir string, defaults, links, vars map[string]string, order []string) []string {
	env := map[string]string{
		"PATH":     shimDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":     dir,
		"TMPDIR":   filepath.Join(dir, "tmp"),
		"HOSTNAME": podName,
		"LANG":     "C.UTF-8",
	}
	for k, v := range defaults {
		env[k] = v
	}
	for k, v := range links {
		env[k] = v
	}
	for _, k := range order {
		env[k] = vars[k]
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
