package testenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Python is a Python process on the host (Debian's /usr/bin/python3, where
// Dask is), such as a Dask client talking to a scheduler at its Pod address.
type Python struct {
	cmd *exec.Cmd
	log string
}

// StartPython runs a script; the test's end kills it.
func StartPython(t testing.TB, script string, env ...string) *Python {
	t.Helper()
	return startPython(t, t.TempDir(), []string{"/usr/bin/python3", "-c", script}, env)
}

// StartPythonIn runs a script with the Python and Dask of an image's root
// (a client must be of the cluster's Dask); the test's end kills it. Its
// working directory is a temporary folder seen at the same path in the root,
// as are the share folders.
func (e *Env) StartPythonIn(t testing.TB, d DaskImage, share []string, script string, env ...string) *Python {
	t.Helper()
	dir := t.TempDir()
	return startPython(t, dir, e.EnterArgs(d, append([]string{dir}, share...), "/usr/bin/python3", "-c", script), env)
}

func startPython(t testing.TB, dir string, argv, env []string) *Python {
	t.Helper()
	c := &Python{log: filepath.Join(t.TempDir(), "python.log")}
	f, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	c.cmd.Dir = dir
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	t.Cleanup(func() { c.Stop(); <-done })
	return c
}

// Stop kills the process and its children.
func (c *Python) Stop() { _ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL) }

// Output is what the process printed so far.
func (c *Python) Output() string {
	data, _ := os.ReadFile(c.log)
	return string(data)
}

// WaitLine waits for a line starting with prefix in the process's output
// and returns the rest of it.
func (c *Python) WaitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	var rest string
	Eventually(t, timeout, func() (bool, string) {
		f, err := os.Open(c.log)
		if err != nil {
			return false, err.Error()
		}
		defer f.Close()
		var out []string
		s := bufio.NewScanner(f)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), prefix) {
				rest = strings.TrimPrefix(s.Text(), prefix)
				return true, ""
			}
			out = append(out, s.Text())
		}
		return false, fmt.Sprintf("no %q from the Python process; its output:\n%s", prefix, strings.Join(out, "\n"))
	})
	return rest
}

// RegisteredWorkers lists the names of the workers a scheduler knows, from
// its HTTP API at its Pod's address.
func RegisteredWorkers(ip string) ([]string, error) {
	resp, err := http.Get("http://" + ip + ":8787/api/v1/get_workers")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get_workers: %s", resp.Status)
	}
	var body struct {
		Workers []struct {
			Name string `json:"name"`
		} `json:"workers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(body.Workers))
	for _, w := range body.Workers {
		names = append(names, w.Name)
	}
	sort.Strings(names)
	return names, nil
}
