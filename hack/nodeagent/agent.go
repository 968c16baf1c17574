package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// hostsKey is the queue item that rewrites every pod's hosts file.
const hostsKey = "\x00hosts"

type agent struct {
	client        kubernetes.Interface
	node          string
	net           *network
	stateDir      string
	shimDir       string
	clusterDomain string
	defaultEnv    map[string]string
	maxPeriod     time.Duration
	logPort       int32      // the kubelet port the log server answers on, 0 when none
	api           *apiAccess // in-cluster API access for pods, or nil
	images        images     // image name to file system root
	self          string     // this binary, which starts processes in image roots (enter)

	pods     corelisters.PodLister
	services corelisters.ServiceLister
	queue    workqueue.TypedRateLimitingInterface[string]

	mu       sync.Mutex
	runtimes map[string]*podRuntime
	// finished remembers the pods (key to UID) whose process ended for good,
	// so that a sync that runs before the cache sees the final phase does not
	// start them again.
	finished map[string]types.UID
}

func (a *agent) run(ctx context.Context, workers int) error {
	if err := a.net.setup(); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(a.client, 0)
	podInformer := factory.Core().V1().Pods()
	svcInformer := factory.Core().V1().Services()
	a.pods, a.services = podInformer.Lister(), svcInformer.Lister()
	// kubectl logs goes through the API server to the node's kubelet port.
	if err := a.serveLogs(ctx, net.JoinHostPort(a.net.NodeIP(), strconv.Itoa(kubeletPort))); err != nil {
		klog.ErrorS(err, "No log server", "hint", podLogHint(a.stateDir))
	} else {
		a.logPort = kubeletPort
	}
	if a.api != nil {
		if err := a.api.start(ctx, a.net.NodeIP()); err != nil {
			return err
		}
	}
	if err := a.registerNode(ctx); err != nil {
		return err
	}
	onPod := func(obj interface{}) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName == a.node {
			if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
				a.queue.Add(key)
			}
		}
		a.queue.Add(hostsKey)
	}
	onService := func(interface{}) { a.queue.Add(hostsKey) }
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, n interface{}) { onPod(n) }, DeleteFunc: onPod,
	})
	_, _ = svcInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onService, UpdateFunc: func(_, n interface{}) { onService(n) }, DeleteFunc: onService,
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced, svcInformer.Informer().HasSynced) {
		return fmt.Errorf("caches did not sync")
	}
	klog.InfoS("Node agent ready", "node", a.node, "bridge", a.net.bridge, "nodeIP", a.net.NodeIP())
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.processNext(ctx) {
			}
		}()
	}
	go a.heartbeat(ctx)
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
	a.stopAll()
	factory.Shutdown()
	return nil
}

func (a *agent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	var err error
	if key == hostsKey {
		err = a.syncHosts()
	} else {
		err = a.syncPod(ctx, key)
	}
	if err != nil {
		klog.ErrorS(err, "Sync failed", "pod", key)
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// syncPod brings one pod's process and status in line with its spec.
func (a *agent) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := a.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		pod = nil
	} else if err != nil {
		return err
	}
	a.mu.Lock()
	rt := a.runtimes[key]
	a.mu.Unlock()
	if rt != nil && (pod == nil || pod.UID != rt.uid) {
		a.teardown(rt, 0)
		rt = nil
	}
	if pod == nil || pod.Spec.NodeName != a.node {
		a.mu.Lock()
		delete(a.finished, key)
		a.mu.Unlock()
		return nil
	}

	if pod.DeletionTimestamp != nil {
		if rt != nil {
			grace := 30 * time.Second
			if pod.DeletionGracePeriodSeconds != nil && time.Duration(*pod.DeletionGracePeriodSeconds)*time.Second < grace {
				grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
			}
			a.teardown(rt, grace)
		}
		// What a kubelet does last: remove the object, only if it is still
		// this pod and not a new one of the same name.
		uid := pod.UID
		err := a.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		return nil
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		if rt != nil {
			a.teardown(rt, 0)
		}
		return nil
	}

	a.mu.Lock()
	done := a.finished[key] == pod.UID
	a.mu.Unlock()
	if rt == nil && done {
		return nil
	}
	if rt == nil {
		rt, err = a.create(pod)
		var pullErr *imagePullError
		if errors.As(err, &pullErr) {
			klog.ErrorS(err, "Image not on this node", "pod", key)
			return a.waitImage(ctx, pod, pullErr.Error())
		}
		if err != nil {
			klog.ErrorS(err, "Cannot run pod", "pod", key)
			return a.fail(ctx, pod, "CannotRun", err.Error())
		}
	}

	// A process that ended restarts, or ends the pod, as restartPolicy says.
	rt.mu.Lock()
	exited := !rt.running && rt.lastExit != nil
	var code int32
	if exited {
		code = rt.lastExit.code
	}
	restart := exited && (pod.Spec.RestartPolicy == corev1.RestartPolicyAlways ||
		pod.Spec.RestartPolicy == "" || (pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && code != 0))
	var wait time.Duration
	if restart {
		if rt.nextStart.IsZero() {
			backoff := time.Second << min(rt.restarts, 4) // 1s, 2s, ... 16s
			rt.nextStart = time.Now().Add(backoff)
		}
		wait = time.Until(rt.nextStart)
	}
	rt.mu.Unlock()

	if restart && wait <= 0 {
		rt.mu.Lock()
		rt.restarts++
		rt.nextStart = time.Time{}
		rt.mu.Unlock()
		if err := rt.start(a.net.netnsName(rt.index), func() { a.queue.Add(key) }); err != nil {
			klog.ErrorS(err, "Restart failed", "pod", key)
		} else {
			klog.InfoS("Container restarted", "pod", key, "restarts", rt.restarts)
		}
	} else if restart {
		a.queue.AddAfter(key, wait)
	}

	if err := a.writeStatus(ctx, pod, rt, exited && !restart); err != nil {
		return err
	}
	if exited && !restart {
		a.mu.Lock()
		a.finished[key] = pod.UID
		a.mu.Unlock()
		a.teardown(rt, 0)
	}
	return nil
}

// create sets up the pod's namespace and starts its first container.
func (a *agent) create(pod *corev1.Pod) (*podRuntime, error) {
	key := pod.Namespace + "/" + pod.Name
	if len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("no containers")
	}
	c := &pod.Spec.Containers[0]
	root, err := a.images.root(c.Image)
	if err != nil {
		return nil, &imagePullError{err}
	}
	idx, err := a.net.allocate()
	if err != nil {
		return nil, err
	}
	podIP := a.net.addr(idx)
	rt := &podRuntime{
		key: key, uid: pod.UID, index: idx, ip: podIP,
		dir: filepath.Join(a.stateDir, "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID)),
	}
	fail := func(err error) (*podRuntime, error) {
		a.net.removePod(idx)
		_ = os.RemoveAll(rt.dir)
		return nil, err
	}
	vars, order, err := containerEnv(pod, c, podIP, a.net.NodeIP(), a)
	if err != nil {
		return fail(err)
	}
	if rt.argv, err = commandLine(c, vars); err != nil {
		return fail(err)
	}
	if rt.probe, err = readinessTarget(c); err != nil {
		return fail(err)
	}
	if p := c.ReadinessProbe; p != nil {
		rt.initial = time.Duration(p.InitialDelaySeconds) * time.Second
		rt.period = min(time.Duration(max(p.PeriodSeconds, 1))*time.Second, a.maxPeriod)
	}
	services, _ := a.services.Services(pod.Namespace).List(labels.Everything())
	rt.env = environ(pod.Name, rt.dir, a.shimDir, a.defaultEnv, serviceLinks(pod, services), vars, order)
	mounts := map[string]string{}
	if a.api != nil && automount(pod) {
		saDir := filepath.Join(rt.dir, "serviceaccount")
		switch err := a.writeServiceAccount(context.TODO(), pod, saDir); {
		case apierrors.IsNotFound(err):
			// Without the ServiceAccount admission plugin nothing waits for
			// the account: the pod runs without credentials.
			klog.InfoS("No service account token for the pod", "pod", key, "err", err)
		case err != nil:
			return fail(err)
		default:
			mounts[saMount] = saDir
			rt.env = inClusterEnv(rt.env)
		}
	}
	if rt.workDir, err = a.configMapVolumes(pod, c, rt.dir); err != nil {
		return fail(err)
	}
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil {
				mounts[m.MountPath] = v.HostPath.Path
			}
		}
	}
	if root != "/" || len(mounts) > 0 {
		// The state folder (HOME, TMPDIR, the python shims, ConfigMap
		// files) is seen at the same path in the image's root.
		rt.argv = enterArgs(a.self, root, cmp.Or(rt.workDir, rt.dir), []string{a.stateDir}, mounts, rt.argv)
	}
	rt.hosts = hostsFile(pod, podIP, a.clusterDomain, a.serviceEntries())
	if err := a.net.addPod(idx, rt.hosts); err != nil {
		return fail(err)
	}
	a.mu.Lock()
	a.runtimes[key] = rt
	a.mu.Unlock()
	if err := rt.start(a.net.netnsName(idx), func() { a.queue.Add(key) }); err != nil {
		// Reported as a failed run; restartPolicy decides what follows.
		klog.ErrorS(err, "Start failed", "pod", key)
	}
	klog.InfoS("Pod started", "pod", key, "ip", podIP, "image", c.Image, "root", root, "argv", rt.argv)
	return rt, nil
}

// teardown stops the pod's process and removes its namespace and scratch space.
func (a *agent) teardown(rt *podRuntime, grace time.Duration) {
	rt.stop(grace)
	a.mu.Lock()
	if a.runtimes[rt.key] == rt {
		delete(a.runtimes, rt.key)
	}
	a.mu.Unlock()
	a.net.removePod(rt.index)
	// The log stays for debugging; the environment's folder goes with it.
	_ = os.RemoveAll(filepath.Join(rt.dir, "tmp"))
	klog.InfoS("Pod stopped", "pod", rt.key, "ip", rt.ip)
}

func (a *agent) stopAll() {
	a.mu.Lock()
	all := make([]*podRuntime, 0, len(a.runtimes))
	for _, rt := range a.runtimes {
		all = append(all, rt)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, rt := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.teardown(rt, 3*time.Second)
		}()
	}
	wg.Wait()
}

// fail ends a pod that cannot run, with a reason a user can act on.
func (a *agent) fail(ctx context.Context, pod *corev1.Pod, reason, message string) error {
	p := pod.DeepCopy()
	p.Status.Phase = corev1.PodFailed
	p.Status.Reason = reason
	p.Status.Message = message
	_, err := a.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// imagePullError is an image that is not on this node.
type imagePullError struct{ err error }

func (e *imagePullError) Error() string { return e.err.Error() }

// waitImage reports a pod whose image is not on this node as a kubelet
// does: Pending, its container waiting with ErrImagePull and the reason.
// Nothing is retried: the node's images do not change while it runs.
func (a *agent) waitImage(ctx context.Context, pod *corev1.Pod, message string) error {
	p := pod.DeepCopy()
	st := &p.Status
	st.Phase = corev1.PodPending
	st.HostIP = a.net.NodeIP()
	st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	if st.StartTime == nil {
		now := metav1.Now()
		st.StartTime = &now
	}
	st.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: message}},
		})
	}
	setCondition(st, corev1.PodInitialized, corev1.ConditionTrue)
	setCondition(st, corev1.ContainersReady, corev1.ConditionFalse)
	setCondition(st, corev1.PodReady, corev1.ConditionFalse)
	return a.updateStatus(ctx, pod, p)
}

// updateStatus writes the status of updated, a changed copy of pod, unless
// nothing changed or the pod is gone.
func (a *agent) updateStatus(ctx context.Context, pod, updated *corev1.Pod) error {
	if apiequality.Semantic.DeepEqual(pod.Status, updated.Status) {
		return nil
	}
	_, err := a.client.CoreV1().Pods(updated.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// writeStatus reports the pod's phase, IP, container state and readiness.
func (a *agent) writeStatus(ctx context.Context, pod *corev1.Pod, rt *podRuntime, terminal bool) error {
	rt.mu.Lock()
	running, ready, startedAt, restarts, last := rt.running, rt.ready, rt.startedAt, rt.restarts, rt.lastExit
	rt.mu.Unlock()

	c := pod.Spec.Containers[0]
	cs := corev1.ContainerStatus{
		Name: c.Name, Image: c.Image, ImageID: c.Image, RestartCount: restarts,
		ContainerID: fmt.Sprintf("nodeagent://%s-%d", pod.UID, restarts),
		Ready:       running && ready,
		Started:     &running,
	}
	terminated := func(e *exitInfo) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{
			ExitCode: e.code, Reason: e.reason,
			StartedAt: metav1.NewTime(e.startedAt.Truncate(time.Second)), FinishedAt: metav1.NewTime(e.finishedAt.Truncate(time.Second)),
		}
	}
	switch {
	case running:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(startedAt.Truncate(time.Second))}
		if last != nil {
			cs.LastTerminationState.Terminated = terminated(last)
		}
	case terminal && last != nil:
		cs.State.Terminated = terminated(last)
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off restarting the failed container"}
		if last != nil {
			cs.LastTerminationState.Terminated = terminated(last)
		}
	}

	p := pod.DeepCopy()
	st := &p.Status
	st.Phase = corev1.PodRunning
	if terminal {
		st.Phase = corev1.PodSucceeded
		if last == nil || last.code != 0 {
			st.Phase = corev1.PodFailed
		}
	}
	st.HostIP = a.net.NodeIP()
	st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	st.PodIP = rt.ip
	st.PodIPs = []corev1.PodIP{{IP: rt.ip}}
	if st.StartTime == nil {
		now := metav1.Now()
		st.StartTime = &now
	}
	st.ContainerStatuses = []corev1.ContainerStatus{cs}
	status := func(b bool) corev1.ConditionStatus {
		if b {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	setCondition(st, corev1.PodReadyToStartContainers, corev1.ConditionTrue)
	setCondition(st, corev1.PodInitialized, corev1.ConditionTrue)
	setCondition(st, corev1.ContainersReady, status(cs.Ready))
	setCondition(st, corev1.PodReady, status(cs.Ready))
	return a.updateStatus(ctx, pod, p)
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, s corev1.ConditionStatus) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			if st.Conditions[i].Status != s {
				st.Conditions[i].Status = s
				st.Conditions[i].LastTransitionTime = metav1.Now()
			}
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()})
}

// syncHosts rewrites the hosts files that changed; the Services are
// resolved once for all of them.
func (a *agent) syncHosts() error {
	a.mu.Lock()
	all := make([]*podRuntime, 0, len(a.runtimes))
	for _, rt := range a.runtimes {
		all = append(all, rt)
	}
	a.mu.Unlock()
	entries := a.serviceEntries()
	for _, rt := range all {
		ns, name, _ := cache.SplitMetaNamespaceKey(rt.key)
		pod, err := a.pods.Pods(ns).Get(name)
		if err != nil {
			continue
		}
		hosts := hostsFile(pod, rt.ip, a.clusterDomain, entries)
		rt.mu.Lock()
		changed := hosts != rt.hosts
		rt.hosts = hosts
		rt.mu.Unlock()
		if changed {
			if err := a.net.writeHosts(rt.index, hosts); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}

func (a *agent) serviceEntries() []serviceEntry {
	services, _ := a.services.List(labels.Everything())
	pods, _ := a.pods.List(labels.Everything())
	entries := serviceEntries(services, pods)
	if a.api != nil {
		// kubernetes.default.svc: the node relays it to the API server.
		entries = append(entries, serviceEntry{name: "kubernetes", namespace: "default", ip: a.net.NodeIP()})
	}
	return entries
}

// configMapVolumes writes the files of the container's ConfigMap volumes
// under dir/volumes/<mount name>. Processes share the host's file system, so
// a mount path cannot be emulated; but a container whose workingDir is such
// a mount path runs in the folder of those files, so that `python script.py`
// finds a script given as a ConfigMap. It returns that folder, or "".
func (a *agent) configMapVolumes(pod *corev1.Pod, c *corev1.Container, dir string) (string, error) {
	workDir := ""
	for _, m := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == m.Name {
				vol = &pod.Spec.Volumes[i]
			}
		}
		if vol == nil || vol.ConfigMap == nil {
			continue
		}
		cm, err := a.client.CoreV1().ConfigMaps(pod.Namespace).Get(context.TODO(), vol.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("volume %s: ConfigMap %s: %w", m.Name, vol.ConfigMap.Name, err)
		}
		files := map[string]string{}
		for k, v := range cm.Data {
			files[k] = v
		}
		if len(vol.ConfigMap.Items) > 0 {
			files = map[string]string{}
			for _, it := range vol.ConfigMap.Items {
				files[it.Path] = cm.Data[it.Key]
			}
		}
		target := filepath.Join(dir, "volumes", m.Name)
		for name, data := range files {
			path := filepath.Join(target, filepath.Clean("/"+name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				return "", err
			}
		}
		if c.WorkingDir != "" && filepath.Clean(c.WorkingDir) == filepath.Clean(m.MountPath) {
			workDir = target
		}
	}
	return workDir, nil
}

func (a *agent) configMapKey(ns, name, key string) (string, bool, error) {
	cm, err := a.client.CoreV1().ConfigMaps(ns).Get(context.TODO(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	v, ok := cm.Data[key]
	return v, ok, nil
}

func (a *agent) secretKey(ns, name, key string) (string, bool, error) {
	s, err := a.client.CoreV1().Secrets(ns).Get(context.TODO(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	v, ok := s.Data[key]
	return string(v), ok, nil
}

// registerNode creates (or takes over) the Node, Ready, with room for many
// pods. It has no taint: every pod the scheduler places here runs.
func (a *agent) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: a.node,
			Labels: map[string]string{
				"kubernetes.io/hostname": a.node, "kubernetes.io/os": "linux", "type": "process",
			},
		},
	}
	created, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = a.client.CoreV1().Nodes().Get(ctx, a.node, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", a.node, err)
	}
	return a.updateNodeStatus(ctx, created)
}

func (a *agent) updateNodeStatus(ctx context.Context, node *corev1.Node) error {
	n := node.DeepCopy()
	// Requests and limits are not enforced here: room enough that the
	// scheduler never refuses a Pod for them (Dask examples ask for 32Gi).
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("4Ti"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	now := metav1.Now()
	n.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.net.NodeIP()}, {Type: corev1.NodeHostName, Address: a.node}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: a.logPort}},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "NodeAgentReady",
			Message: "pods run as processes in network namespaces", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		NodeInfo: corev1.NodeSystemInfo{
			Architecture: "amd64", OperatingSystem: "linux", KubeletVersion: "nodeagent", ContainerRuntimeVersion: "nodeagent://processes",
		},
	}
	_, err := a.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// heartbeat keeps the node's Ready condition fresh.
func (a *agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.node, metav1.GetOptions{})
		if err == nil {
			err = a.updateNodeStatus(ctx, node)
		}
		if err != nil && ctx.Err() == nil {
			utilruntime.HandleError(fmt.Errorf("node heartbeat: %w", err))
		}
	}
}

func parseEnvFlags(values []string) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE", kv)
		}
		env[k] = v
	}
	return env, nil
}
