package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options selects the parts of the control plane to run.
type Options struct {
	// Nodes runs kube-scheduler and kwok with one fake node, so that Pods are
	// scheduled and become Running and Ready (AddKwokNode adds more), and
	// the Pod garbage collector, which deletes the Pods of deleted nodes.
	Nodes bool
	// RealPods runs kube-scheduler and the node agent (hack/nodeagent)
	// instead of kwok: Pods run as host processes in network namespaces on a
	// bridge of their own, with real Dask. Needs root and iproute2; not
	// together with Nodes.
	RealPods bool
	// CRDDir holds the CRDs to install; empty means <repo>/manifests/crds.
	// Set SkipCRDs to install none.
	CRDDir   string
	SkipCRDs bool
	// SkipGarbageCollectorWait returns as soon as the CRDs are established,
	// without waiting (up to about 30 s) for the garbage collector to learn
	// the Dask kinds; cascading deletion of Dask objects works only after.
	SkipGarbageCollectorWait bool
	// Workloads runs the Deployment and ReplicaSet controllers in
	// kube-controller-manager, so that Deployments (the Python operator's)
	// get Pods.
	Workloads bool
	// Jobs runs the Job controller in kube-controller-manager, so that
	// batch Jobs get Pods.
	Jobs bool
	// AuditLog makes kube-apiserver write every write request (not reads)
	// to Env.AuditLog, one JSON event per line, with the user agent.
	AuditLog bool
	// Dir is where data and logs go; empty means a new temporary folder that
	// Stop removes.
	Dir string
}

// Env is a running control plane.
type Env struct {
	// Config authenticates as a cluster administrator.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for Config.
	Kubeconfig string
	// Dir holds data and logs.
	Dir string
	// NodeName is the node's name when Options.Nodes or RealPods is set.
	NodeName string
	// Bridge and PodCIDR are the node agent's bridge and pod addresses when
	// Options.RealPods is set.
	Bridge, PodCIDR string
	// EtcdURL is etcd's client URL (its gRPC gateway serves /v3/... as JSON).
	EtcdURL string
	// AuditLog is the API server's audit log when Options.AuditLog is set.
	AuditLog string
	// Images are the Dask releases the node runs when Options.RealPods is
	// set, oldest first (see DaskImages).
	Images []DaskImage

	bins      Binaries
	procs     []*process
	agentBin  string
	removeDir bool
	apiPort   int
}

const adminToken = "dask-operator-test-admin"

// Start runs a control plane and returns once it serves requests, with the
// CRDs installed and known to the garbage collector.
func Start(opts Options) (env *Env, err error) {
	bins, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	env = &Env{bins: bins, Dir: opts.Dir}
	if env.Dir == "" {
		env.Dir, err = os.MkdirTemp("", "dask-operator-testenv-")
		if err != nil {
			return nil, err
		}
		env.removeDir = true
	}
	defer func() {
		if err != nil {
			env.Stop()
		}
	}()
	if opts.AuditLog {
		env.AuditLog = filepath.Join(env.Dir, "audit.log")
	}
	if err := env.startEtcdAndAPIServer(); err != nil {
		return nil, err
	}
	if opts.Nodes && opts.RealPods {
		return nil, fmt.Errorf("testenv: Nodes and RealPods exclude each other")
	}
	if err := env.startControllerManager(opts.RealPods, opts.Nodes, opts.Workloads, opts.Jobs); err != nil {
		return nil, err
	}
	if opts.Nodes {
		if err := env.startNodes(); err != nil {
			return nil, err
		}
	}
	if opts.RealPods {
		if err := env.startRealPods(); err != nil {
			return nil, err
		}
	}
	if !opts.SkipCRDs {
		dir := opts.CRDDir
		if dir == "" {
			root, err := RepoRoot()
			if err != nil {
				return nil, err
			}
			dir = filepath.Join(root, "manifests", "crds")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := InstallCRDs(ctx, env.Config, dir); err != nil {
			return nil, err
		}
		if !opts.SkipGarbageCollectorWait {
			if err := waitGarbageCollectorKnowsDask(ctx, env.Config); err != nil {
				return nil, err
			}
		}
	}
	return env, nil
}

func (e *Env) startEtcdAndAPIServer() error {
	etcdClient, etcdPeer, apiPort := freePort(), freePort(), freePort()
	e.apiPort = apiPort
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	e.EtcdURL = etcdURL
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd, err := startProcess(e.Dir, "etcd", e.bins.Path("etcd"),
		"--name=default",
		"--data-dir="+filepath.Join(e.Dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, etcd)

	saKey := filepath.Join(e.Dir, "sa.key")
	if err := writeServiceAccountKey(saKey); err != nil {
		return err
	}
	tokens := filepath.Join(e.Dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return err
	}
	var audit []string
	if e.AuditLog != "" {
		policy := filepath.Join(e.Dir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
			return err
		}
		audit = []string{"--audit-policy-file=" + policy, "--audit-log-path=" + e.AuditLog, "--audit-log-format=json",
			"--audit-log-mode=blocking", "--audit-log-maxsize=0"}
	}
	api, err := startProcess(e.Dir, "kube-apiserver", e.bins.Path("kube-apiserver"), append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(e.Dir, "apiserver-certs"),
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		// Namespaces are created by tests and used at once: the ServiceAccount
		// admission plugin would reject Pods until the default account exists.
		// TaintNodesByCondition taints new nodes not-ready, and no node
		// lifecycle controller runs here to lift it.
		"--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
		"--enable-priority-and-fairness=false",
		"--max-requests-inflight=2000",
		"--max-mutating-requests-inflight=1000",
		// kubectl logs reaches the node agent at the node's address; its
		// name resolves nowhere.
		"--kubelet-preferred-address-types=InternalIP",
	}, audit...)...)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, api)

	e.Config = &rest.Config{
		Host:            "https://127.0.0.1:" + strconv.Itoa(apiPort),
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             200,
		Burst:           400,
	}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := WriteKubeconfig(e.Kubeconfig, e.Config); err != nil {
		return err
	}
	return e.waitHealthy(api, etcd)
}

func (e *Env) waitHealthy(procs ...*process) error {
	client, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for _, p := range procs {
			if p.exited() {
				return fmt.Errorf("%s exited:\n%s", p.name, p.tail())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil && string(body) == "ok" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready after 2m: %v\n%s", err, procs[0].tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// auditPolicy records every request but reads, with its metadata (user,
// user agent, verb, object, response code).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    verbs: ["get", "list", "watch"]
  - level: Metadata
`

func (e *Env) startControllerManager(endpoints, podGC, workloads, jobs bool) error {
	controllers := "garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller"
	if endpoints {
		// Pods with real addresses: the API server's service proxy finds
		// them through Endpoints.
		controllers += ",endpoints-controller,endpointslice-controller"
	}
	if workloads {
		controllers += ",deployment-controller,replicaset-controller"
	}
	if jobs {
		controllers += ",job-controller"
	}
	if podGC {
		// Pods of a deleted (kwok) node are deleted, as in a real cluster.
		controllers += ",pod-garbage-collector-controller"
	}
	cm, err := startProcess(e.Dir, "kube-controller-manager", e.bins.Path("kube-controller-manager"),
		"--kubeconfig="+e.Kubeconfig,
		"--controllers="+controllers,
		"--service-account-private-key-file="+filepath.Join(e.Dir, "sa.key"),
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-gc-syncs=20",
	)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, cm)
	return nil
}

// Stop kills every process of the environment and removes its temporary folder.
func (e *Env) Stop() {
	if e == nil {
		return
	}
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop(10 * time.Second)
	}
	e.procs = nil
	e.cleanupRealPods()
	if e.removeDir {
		_ = os.RemoveAll(e.Dir)
	}
}

// Pids are the process ids of the running control plane processes.
func (e *Env) Pids() []int {
	var pids []int
	for _, p := range e.procs {
		if !p.exited() {
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	return pids
}

// Pid returns the process id of a running component ("kube-apiserver",
// "etcd", ...), or 0.
func (e *Env) Pid(name string) int {
	for _, p := range e.procs {
		if p.name == name && !p.exited() {
			return p.cmd.Process.Pid
		}
	}
	return 0
}

// WriteKubeconfig writes a kubeconfig file for a rest.Config that uses a bearer token.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "user", Namespace: "default"}
	kc.CurrentContext = "local"
	return clientcmd.WriteToFile(*kc, path)
}

func writeServiceAccountKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Restart stops a component (SIGKILL, as a crash would) and, after down,
// starts it again with the same arguments: for example "kube-apiserver", to
// test what happens when the API server goes away for a while. It returns
// once a restarted API server is ready.
func (e *Env) Restart(name string, down time.Duration) error {
	for i, p := range e.procs {
		if p.name != name {
			continue
		}
		if !p.exited() {
			if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
				return err
			}
			<-p.done
		}
		time.Sleep(down)
		np, err := startProcess(e.Dir, name, p.cmd.Path, p.cmd.Args[1:]...)
		if err != nil {
			return err
		}
		e.procs[i] = np
		if name == "kube-apiserver" {
			return e.waitHealthy(np)
		}
		return nil
	}
	return fmt.Errorf("no %s", name)
}

// Kill sends SIGKILL to a component (for example "nodeagent" or "kwok"), to
// test what happens when it dies; Stop still cleans up after it.
func (e *Env) Kill(name string) error {
	for _, p := range e.procs {
		if p.name == name && !p.exited() {
			if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
				return err
			}
			<-p.done
			return nil
		}
	}
	return fmt.Errorf("no running %s", name)
}
