// Command nodeagent is a development and test node for the local control
// plane: it registers a Node and runs the Pods bound to it as host processes,
// each in its own network namespace on a Linux bridge, so that Dask really
// runs without a container runtime. It needs root and iproute2.
//
//	nodeagent --kubeconfig K --node-name N --bridge dko0 --cidr 10.250.0.0/24 --state-dir D --image NAME=ROOT...
//	nodeagent cleanup --bridge dko0
//	nodeagent enter --root R [--share DIR]... -- ARGV...   (see enter.go)
//
// For each Pod it: creates the namespace <bridge>-<n> with the address
// 10.250.x.<n> (the bridge has .1, and the host reaches every pod address);
// writes /etc/netns/<namespace>/hosts (bind-mounted over /etc/hosts by
// `ip netns exec`), mapping each Service's DNS names to a ready Pod it
// selects; runs the first container's command and args ($(VAR) expanded from
// its env) in the file system root its image stands for (--image; "/" is the
// host, and `nodeagent enter` runs a process in any other root) in its own
// process group; reports Running with the pod IP, readiness from the HTTP or
// TCP readiness probe, and Succeeded or Failed with the exit code, restarting
// as restartPolicy says; and on deletion stops the process group (SIGTERM,
// then SIGKILL after the grace period) and removes the namespace.
//
// An image that --image does not name is not pulled: the pod stays Pending
// with ErrImagePull.
//
// Volumes: ConfigMap volumes are written to files (see configMapVolumes),
// hostPath volumes are mounted.
//
// Not done: init and other containers, other volumes, resource limits, liveness
// probes, Service virtual IPs (names resolve to a Pod's address).
//
// `cleanup` removes every namespace, veth, /etc/netns folder and process
// of a bridge, and the bridge: what an agent that was killed left behind.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "enter" {
		if err := enter(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(127)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "cleanup" {
		fs := flag.NewFlagSet("cleanup", flag.ExitOnError)
		bridge := fs.String("bridge", "", "Bridge whose pods to remove.")
		_ = fs.Parse(os.Args[2:])
		if *bridge == "" {
			fmt.Fprintln(os.Stderr, "nodeagent cleanup: --bridge is required")
			os.Exit(2)
		}
		if err := cleanup(*bridge); err != nil {
			fmt.Fprintln(os.Stderr, "nodeagent cleanup:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		klog.ErrorS(err, "Node agent failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("nodeagent", flag.ExitOnError)
	klog.InitFlags(fs)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "Kubeconfig of the cluster.")
	node := fs.String("node-name", "process-node-0", "Name of the Node to register.")
	bridge := fs.String("bridge", "dko0", "Linux bridge of the pods (created when missing; at most 10 characters).")
	cidr := fs.String("cidr", "10.250.0.0/24", "Pod addresses: an IPv4 /24; the bridge takes .1.")
	stateDir := fs.String("state-dir", filepath.Join(os.TempDir(), "dask-operator-nodeagent"), "Folder of the pods' working directories and logs.")
	python := fs.String("python", "/usr/bin/python3", "The Python that `python` and `python3` mean in pods (one with Dask).")
	clusterDomain := fs.String("cluster-domain", "cluster.local", "DNS domain of Service names in pods' hosts files.")
	maxPeriod := fs.Duration("max-probe-period", time.Second, "Readiness probes run at least this often (a kubelet's default is 10s).")
	workers := fs.Int("workers", 8, "Pods handled at once.")
	apiCA := fs.String("apiserver-ca", "", "The API server's CA bundle: when set, pods get their service account's token and in-cluster access to the API server.")
	var env, imageFlags stringList
	fs.Var(&imageFlags, "image", "NAME=ROOT: pods of image NAME run in the file system root ROOT (\"/\" is the host; NAME \"*\" is every image; repeatable). Other images fail with ErrImagePull.")
	fs.Var(&env, "env", "NAME=VALUE set in every pod unless the pod sets NAME (repeatable): stands in for what an image would set.")
	_ = fs.Parse(args)

	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespaces need root")
	}
	defaults, err := parseEnvFlags(env)
	if err != nil {
		return err
	}
	imageRoots, err := parseImages(imageFlags)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	network, err := newNetwork(*bridge, *cidr)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	shimDir := filepath.Join(*stateDir, "bin")
	if err := os.MkdirAll(filepath.Join(*stateDir, "pods"), 0o755); err != nil {
		return err
	}
	if err := writeShims(shimDir, *python); err != nil {
		return err
	}
	// Namespaces of an agent that was killed on this bridge go first.
	if err := cleanup(*bridge); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a := &agent{
		client: client, node: *node, net: network, stateDir: *stateDir, shimDir: shimDir,
		clusterDomain: *clusterDomain, defaultEnv: defaults, maxPeriod: *maxPeriod, images: imageRoots, self: self,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "pods"}),
		runtimes: map[string]*podRuntime{},
		finished: map[string]types.UID{},
	}
	if *apiCA != "" {
		a.api = &apiAccess{caFile: *apiCA, upstream: strings.TrimPrefix(strings.TrimPrefix(cfg.Host, "https://"), "http://")}
		defer a.api.stop()
	}
	err = a.run(ctx, *workers)
	if cerr := cleanup(*bridge); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// writeShims makes `python` and `python3` in pods mean the Python with Dask,
// as they do in Dask's images.
func writeShims(dir, python string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"python", "python3"} {
		link := filepath.Join(dir, name)
		_ = os.Remove(link)
		if err := os.Symlink(python, link); err != nil {
			return err
		}
	}
	return nil
}
