package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// network is a Linux bridge with one /24 of pod addresses: .1 is the
// bridge's (the node's) address, each pod gets a network namespace named
// <bridge>-<n> with a veth <bridge>v<n> on the bridge and the address .n.
type network struct {
	bridge string
	base   net.IP // x.y.z.0
	mu     sync.Mutex
	used   map[int]bool
	next   int // where the next search starts, 0-based from .2
}

func newNetwork(bridge, cidr string) (*network, error) {
	if len(bridge) > 10 {
		return nil, fmt.Errorf("bridge name %q: at most 10 characters, so that veth names fit in 15", bridge)
	}
	ip, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, err
	}
	if ones, bits := ipnet.Mask.Size(); ones != 24 || bits != 32 || ip.To4() == nil {
		return nil, fmt.Errorf("--cidr %s: want an IPv4 /24", cidr)
	}
	return &network{bridge: bridge, base: ipnet.IP.To4(), used: map[int]bool{}}, nil
}

func (n *network) addr(i int) string {
	ip := append(net.IP(nil), n.base...)
	ip[3] = byte(i)
	return ip.String()
}

// NodeIP is the bridge's address.
func (n *network) NodeIP() string { return n.addr(1) }

func (n *network) netnsName(i int) string { return n.bridge + "-" + strconv.Itoa(i) }
func (n *network) vethName(i int) string  { return n.bridge + "v" + strconv.Itoa(i) }

// setup creates the bridge (or takes the existing one) and gives it .1.
func (n *network) setup() error {
	if err := ip("link", "add", n.bridge, "type", "bridge"); err != nil && !strings.Contains(err.Error(), "File exists") {
		return err
	}
	if err := ip("addr", "replace", n.NodeIP()+"/24", "dev", n.bridge); err != nil {
		return err
	}
	return ip("link", "set", n.bridge, "up")
}

// allocate reserves a free pod address index, going round the range so that
// an address freed a moment ago is not handed out again at once (a Dask
// scheduler may still know a worker by it).
func (n *network) allocate() (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := 0; k < 253; k++ {
		i := 2 + (n.next+k)%253
		if !n.used[i] {
			n.used[i] = true
			n.next = i - 1
			return i, nil
		}
	}
	return 0, fmt.Errorf("no free address on %s: 253 pods already run", n.bridge)
}

func (n *network) release(i int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.used, i)
}

// addPod creates the pod's namespace, its veth and address, and its
// /etc/netns files (hosts, and a resolv.conf whose lookups fail fast: only
// the hosts file resolves names in a pod).
func (n *network) addPod(i int, hosts string) error {
	ns, veth := n.netnsName(i), n.vethName(i)
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", veth, "master", n.bridge, "up"},
		{"-n", ns, "addr", "add", n.addr(i) + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "route", "add", "default", "via", n.NodeIP()},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		return err
	}
	return n.writeHosts(i, hosts)
}

// writeHosts rewrites the pod's hosts file in place: `ip netns exec`
// bind-mounted this very file over /etc/hosts, so a new file would not be seen.
func (n *network) writeHosts(i int, hosts string) error {
	return os.WriteFile(filepath.Join("/etc/netns", n.netnsName(i), "hosts"), []byte(hosts), 0o644)
}

// removePod kills whatever still runs in the pod's namespace and removes the
// namespace, its veth and its /etc/netns files.
func (n *network) removePod(i int) {
	removeNetns(n.netnsName(i))
	_ = ip("link", "del", n.vethName(i))
	n.release(i)
}

func removeNetns(ns string) {
	killNetnsProcesses(ns)
	if err := ip("netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
		fmt.Fprintf(os.Stderr, "nodeagent: %v\n", err)
	}
	_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
}

// killNetnsProcesses SIGKILLs every process in a namespace until none is left.
func killNetnsProcesses(ns string) {
	for attempt := 0; attempt < 50; attempt++ {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil || len(bytes.TrimSpace(out)) == 0 {
			return
		}
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cleanup removes every namespace, veth and /etc/netns folder of a bridge,
// and the bridge itself: what an agent that was killed left behind.
func cleanup(bridge string) error {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("ip netns list: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.HasPrefix(fields[0], bridge+"-") {
			removeNetns(fields[0])
		}
	}
	if entries, err := os.ReadDir("/etc/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), bridge+"-") {
				_ = os.RemoveAll(filepath.Join("/etc/netns", e.Name()))
			}
		}
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return fmt.Errorf("ip link show: %w", err)
	}
	for _, line := range strings.Split(string(links), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name := strings.SplitN(strings.TrimSuffix(fields[1], ":"), "@", 2)[0]
		if strings.HasPrefix(name, bridge+"v") {
			_ = ip("link", "del", name)
		}
	}
	if err := ip("link", "del", bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		return err
	}
	return nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
