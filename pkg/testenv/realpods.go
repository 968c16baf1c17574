package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BridgePrefix starts the names of the node agent's bridges, and of the
// network namespaces and veths it makes (<bridge>-<n>, <bridge>v<n>).
const BridgePrefix = "dko"

// startRealPods runs kube-scheduler and the node agent on a bridge of its
// own, and waits for the agent's node to be Ready.
func (e *Env) startRealPods() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("testenv: real pods run in network namespaces, which need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("testenv: real pods need iproute2's ip: %w", err)
	}
	if err := e.buildNodeAgent(); err != nil {
		return err
	}
	images, err := DaskImages()
	if err != nil {
		return err
	}
	e.Images = images
	if err := e.claimBridge(); err != nil {
		return err
	}
	if err := e.startScheduler(); err != nil {
		return err
	}
	e.NodeName = "process-node-0"
	agent, err := startProcess(e.Dir, "nodeagent", e.agentBin, append(imageFlags(images),
		"--kubeconfig="+e.Kubeconfig,
		"--node-name="+e.NodeName,
		"--bridge="+e.Bridge,
		"--cidr="+e.PodCIDR,
		"--state-dir="+filepath.Join(e.Dir, "nodeagent"),
		"--apiserver-ca="+filepath.Join(e.Dir, "apiserver-certs", "apiserver.crt"),
		"-v=2",
	)...)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, agent)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return e.waitNodeReady(ctx, agent)
}

// buildNodeAgent builds hack/nodeagent, a Go module of its own, from this
// checkout (Go's build cache makes it quick after the first time).
func (e *Env) buildNodeAgent() error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	e.agentBin = filepath.Join(e.Dir, "bin", "nodeagent")
	cmd := exec.Command("go", "build", "-o", e.agentBin, ".")
	cmd.Dir = filepath.Join(root, "hack", "nodeagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the node agent: %v\n%s", err, out)
	}
	return nil
}

// claimBridge creates the first free bridge dko<n> and takes 10.250.<n>.0/24
// for its pods: creating the link is what claims it, so environments that
// start at the same time get different ones. A bridge whose owner (see
// ownerFile) is gone was left by a killed run: it is cleaned up and reused.
func (e *Env) claimBridge() error {
	for n := 0; n < 250; n++ {
		name := BridgePrefix + strconv.Itoa(n)
		for attempt := 0; attempt < 2; attempt++ {
			out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput()
			if err == nil {
				e.Bridge, e.PodCIDR = name, fmt.Sprintf("10.250.%d.0/24", n)
				if err := os.MkdirAll(filepath.Dir(ownerFile(name)), 0o755); err != nil {
					return err
				}
				return os.WriteFile(ownerFile(name), []byte(strconv.Itoa(os.Getpid())), 0o644)
			}
			if !strings.Contains(string(out), "File exists") {
				return fmt.Errorf("ip link add %s: %v: %s", name, err, out)
			}
			if !abandoned(name) {
				break
			}
			fmt.Fprintf(os.Stderr, "testenv: removing bridge %s, left behind by a run that is gone\n", name)
			if out, err := exec.Command(e.agentBin, "cleanup", "--bridge="+name).CombinedOutput(); err != nil {
				return fmt.Errorf("clean up bridge %s: %v\n%s", name, err, out)
			}
		}
	}
	return fmt.Errorf("testenv: no free bridge %s0-249", BridgePrefix)
}

// ownerFile holds the pid of the process that claimed a bridge.
func ownerFile(bridge string) string {
	return filepath.Join(os.TempDir(), "dask-operator-bridges", bridge+".pid")
}

// abandoned tells whether a bridge's owner is gone. A bridge claimed a
// moment ago may not have its owner file yet: that counts as owned.
func abandoned(bridge string) bool {
	data, err := os.ReadFile(ownerFile(bridge))
	if os.IsNotExist(err) {
		time.Sleep(time.Second)
		data, err = os.ReadFile(ownerFile(bridge))
	}
	if err != nil {
		return os.IsNotExist(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return true
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// cleanupRealPods removes what the node agent made, should it have been
// killed before it could: namespaces, veths, their processes, the bridge.
func (e *Env) cleanupRealPods() {
	if e.Bridge == "" || e.agentBin == "" {
		return
	}
	if out, err := exec.Command(e.agentBin, "cleanup", "--bridge="+e.Bridge).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: node agent cleanup: %v\n%s", err, out)
	}
	_ = os.Remove(ownerFile(e.Bridge))
	e.Bridge = ""
}

// RealPodsMissing says what this machine lacks for Options.RealPods, or "".
func RealPodsMissing() string {
	if os.Geteuid() != 0 {
		return "network namespaces need root (CI runs as root)"
	}
	for _, bin := range []string{"/usr/sbin/ip", "/usr/bin/dask-scheduler", "/usr/bin/dask-worker", "/usr/bin/python3"} {
		if _, err := os.Stat(bin); err != nil {
			return bin + " is missing: apt-get install iproute2 python3-distributed (make test does: hack/ensure-deps.sh)"
		}
	}
	return ""
}

// RealPodsCanRun is the start of a TestMain of tests that need real Pods:
// it returns false, having said why, when they cannot run here (with
// -short, or without root, iproute2 or Dask); the test binary then exits
// with exitCode (1 under CI, which must run them).
func RealPodsCanRun(what string) (ok bool, exitCode int) {
	if testing.Short() {
		fmt.Println(what + " need a control plane: not run with -short")
		return false, 0
	}
	if missing := RealPodsMissing(); missing != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, what+" cannot run:", missing)
			return false, 1
		}
		fmt.Println(what+" NOT RUN:", missing)
		return false, 0
	}
	return true, 0
}
