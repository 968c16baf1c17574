package resources

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// Environment variables injected into Dask containers.
const (
	EnvWorkerName       = "DASK_WORKER_NAME"
	EnvSchedulerAddress = "DASK_SCHEDULER_ADDRESS"
)

// Default ports and port names of the scheduler Service.
const (
	CommPortName      = "tcp-comm"
	DashboardPortName = "http-dashboard"
	DefaultCommPort   = 8786
	DefaultHTTPPort   = 8787
)

var (
	clusterGVK     = daskv1.SchemeGroupVersion.WithKind("DaskCluster")
	workerGroupGVK = daskv1.SchemeGroupVersion.WithKind("DaskWorkerGroup")
	jobGVK         = daskv1.SchemeGroupVersion.WithKind("DaskJob")
)

// ControllerRefToCluster makes a DaskCluster the controller of a child.
func ControllerRefToCluster(c *daskv1.DaskCluster) metav1.OwnerReference {
	return *metav1.NewControllerRef(c, clusterGVK)
}

// ControllerRefToWorkerGroup makes a DaskWorkerGroup the controller of a child.
func ControllerRefToWorkerGroup(g *daskv1.DaskWorkerGroup) metav1.OwnerReference {
	return *metav1.NewControllerRef(g, workerGroupGVK)
}

// ControllerRefToJob makes a DaskJob the controller of a child.
func ControllerRefToJob(j *daskv1.DaskJob) metav1.OwnerReference {
	return *metav1.NewControllerRef(j, jobGVK)
}

// ServicePort returns the port of the scheduler Service with the given name,
// or def when the Service has none by that name.
func ServicePort(spec *corev1.ServiceSpec, name string, def int32) int32 {
	for _, p := range spec.Ports {
		if p.Name == name {
			return p.Port
		}
	}
	return def
}

// SchedulerAddress is the address workers and runners use to reach the
// scheduler: tcp://<cluster>-scheduler.<namespace>.svc.<domain>:<comm port>.
func SchedulerAddress(c *daskv1.DaskCluster, clusterDomain string) string {
	port := ServicePort(&c.Spec.Scheduler.Service, CommPortName, DefaultCommPort)
	return fmt.Sprintf("tcp://%s.%s.svc.%s:%d", SchedulerName(c.Name), c.Namespace, clusterDomain, port)
}

// TemplateHash names a Pod spec as a user wrote it: a short hash of its
// JSON (encoding/json orders fields and map keys, so equal specs hash
// alike). Scheduler and worker Pods carry the hash of the spec they were made
// from in LabelTemplateHash; what the operator adds to the spec (environment
// variables) is not part of it, so an operator upgrade replaces no Pod.
func TemplateHash(spec *corev1.PodSpec) string {
	data, err := json.Marshal(spec)
	if err != nil {
		panic(err) // a PodSpec always marshals
	}
	h := fnv.New64a()
	_, _ = h.Write(data)
	return fmt.Sprintf("%016x", h.Sum64())[:10]
}

// SchedulerTemplateHash is the template hash of a cluster's scheduler.
func SchedulerTemplateHash(c *daskv1.DaskCluster) string { return TemplateHash(&c.Spec.Scheduler.Spec) }

// WorkerTemplateHash is the template hash of a group's workers.
func WorkerTemplateHash(g *daskv1.DaskWorkerGroup) string { return TemplateHash(&g.Spec.Worker.Spec) }

// Outdated reports whether a Pod was made from another template than the
// one whose hash is given. Pods without the label (made before the operator
// recorded it) count as current: an upgrade of the operator restarts nothing.
func Outdated(p *corev1.Pod, hash string) bool {
	h, ok := p.Labels[LabelTemplateHash]
	return ok && h != hash
}

// DashboardURL is the scheduler's dashboard inside the cluster:
// http://<cluster>-scheduler.<namespace>.svc.<domain>:<dashboard port>.
func DashboardURL(c *daskv1.DaskCluster, clusterDomain string) string {
	port := ServicePort(&c.Spec.Scheduler.Service, DashboardPortName, DefaultHTTPPort)
	return fmt.Sprintf("http://%s.%s.svc.%s:%d", SchedulerName(c.Name), c.Namespace, clusterDomain, port)
}

// ExternalAddresses are the scheduler's address and dashboard through a
// LoadBalancer Service's first ingress, or empty.
func ExternalAddresses(c *daskv1.DaskCluster, svc *corev1.Service) (string, string) {
	if svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Status.LoadBalancer.Ingress) == 0 {
		return "", ""
	}
	host := cmp.Or(svc.Status.LoadBalancer.Ingress[0].IP, svc.Status.LoadBalancer.Ingress[0].Hostname)
	if host == "" {
		return "", ""
	}
	comm := ServicePort(&svc.Spec, CommPortName, DefaultCommPort)
	http := ServicePort(&svc.Spec, DashboardPortName, DefaultHTTPPort)
	return fmt.Sprintf("tcp://%s", net.JoinHostPort(host, strconv.Itoa(int(comm)))),
		fmt.Sprintf("http://%s", net.JoinHostPort(host, strconv.Itoa(int(http))))
}

// SchedulerPod builds a cluster's scheduler Pod.
func SchedulerPod(c *daskv1.DaskCluster) *corev1.Pod {
	return SchedulerPodWithHash(c, SchedulerTemplateHash(c))
}

// SchedulerPodWithHash is SchedulerPod for a caller that knows the
// template hash already (hashing marshals the whole Pod spec).
func SchedulerPodWithHash(c *daskv1.DaskCluster, hash string) *corev1.Pod {
	meta := c.Spec.Scheduler.Metadata
	spec := c.Spec.Scheduler.Spec.DeepCopy()
	noServiceLinks(spec)
	enableSchedulerAPI(spec)
	if !LegacyCommandsKept(c.Annotations) {
		rewriteLegacyCommands(spec)
	}
	return &corev1.Pod{
		ObjectMeta: tracked(metav1.ObjectMeta{
			Name:      SchedulerName(c.Name),
			Namespace: c.Namespace,
			Labels: MergeLabels(c.Labels, meta.Labels, SchedulerSelector(c.Name),
				map[string]string{LabelIstioInject: "false", LabelTemplateHash: hash}),
			Annotations:     MergeAnnotations(c.Annotations, meta.Annotations),
			OwnerReferences: []metav1.OwnerReference{ControllerRefToCluster(c)},
		}),
		Spec: *spec,
	}
}

// SchedulerService builds a cluster's scheduler Service. A spec without a
// selector selects the scheduler Pod.
func SchedulerService(c *daskv1.DaskCluster) *corev1.Service {
	meta := c.Spec.Scheduler.Metadata
	spec := c.Spec.Scheduler.Service.DeepCopy()
	if len(spec.Selector) == 0 {
		spec.Selector = SchedulerSelector(c.Name)
	}
	return &corev1.Service{
		ObjectMeta: tracked(metav1.ObjectMeta{
			Name:            SchedulerName(c.Name),
			Namespace:       c.Namespace,
			Labels:          MergeLabels(c.Labels, meta.Labels, SchedulerSelector(c.Name)),
			Annotations:     MergeAnnotations(c.Annotations, meta.Annotations),
			OwnerReferences: []metav1.OwnerReference{ControllerRefToCluster(c)},
		}),
		Spec: *spec,
	}
}

// AnnotationSyncedReplicas records the replica count a DaskCluster and its
// default worker group last agreed on: on the group from its creation, and on
// the cluster, in the same request as its spec, once the cluster has followed
// a scaled group. Comparing both counts with it tells which side was scaled:
// the cluster (kubectl scale daskcluster) or the group itself (kubectl scale
// daskworkergroup, an autoscaler, an HPA, the KubeCluster client).
const AnnotationSyncedReplicas = "kubernetes.dask.org/synced-replicas"

// DefaultWorkerGroup builds a cluster's default DaskWorkerGroup. Its worker
// spec is the cluster's spec.worker; its labels and annotations are the
// cluster's and spec.worker.metadata's.
func DefaultWorkerGroup(c *daskv1.DaskCluster) *daskv1.DaskWorkerGroup {
	return &daskv1.DaskWorkerGroup{
		ObjectMeta: tracked(metav1.ObjectMeta{
			Name:      DefaultWorkerGroupName(c.Name),
			Namespace: c.Namespace,
			// The worker metadata too, as the Python operator puts it there:
			// `kubectl get daskworkergroups -l <a worker label>` finds the group.
			Labels: MergeLabels(c.Labels, c.Spec.Worker.Metadata.Labels, map[string]string{
				LabelClusterName: c.Name,
				LabelComponent:   ComponentWorkerGroup,
			}),
			Annotations: MergeLabels(MergeAnnotations(c.Annotations, c.Spec.Worker.Metadata.Annotations), map[string]string{
				AnnotationSyncedReplicas: strconv.Itoa(int(Replicas(&c.Spec.Worker))),
			}),
			OwnerReferences: []metav1.OwnerReference{ControllerRefToCluster(c)},
		}),
		Spec: daskv1.DaskWorkerGroupSpec{
			Cluster: c.Name,
			Worker:  *c.Spec.Worker.DeepCopy(),
		},
	}
}

// WorkerPod builds a worker Pod of a group. Labels: the cluster's for keys
// not set otherwise, then the group's, then spec.worker.metadata, then the
// operator's.
func WorkerPod(g *daskv1.DaskWorkerGroup, c *daskv1.DaskCluster, name, clusterDomain string) *corev1.Pod {
	return WorkerPodWithHash(g, c, name, clusterDomain, WorkerTemplateHash(g))
}

// WorkerPodWithHash is WorkerPod for a caller that knows the template hash
// already (hashing marshals the whole Pod spec).
func WorkerPodWithHash(g *daskv1.DaskWorkerGroup, c *daskv1.DaskCluster, name, clusterDomain, hash string) *corev1.Pod {
	meta := g.Spec.Worker.Metadata
	spec := g.Spec.Worker.Spec.DeepCopy()
	noServiceLinks(spec)
	injectEnv(spec, []corev1.EnvVar{
		{Name: EnvWorkerName, Value: name},
		{Name: EnvSchedulerAddress, Value: SchedulerAddress(c, clusterDomain)},
	})
	if !LegacyCommandsKept(g.Annotations, c.Annotations) {
		rewriteLegacyCommands(spec)
	}
	return &corev1.Pod{
		ObjectMeta: tracked(metav1.ObjectMeta{
			Name:      name,
			Namespace: g.Namespace,
			Labels: MergeLabels(c.Labels, g.Labels, meta.Labels, WorkerGroupSelector(c.Name, g.Name),
				map[string]string{LabelIstioInject: "false", LabelTemplateHash: hash}),
			Annotations:     MergeAnnotations(g.Annotations, meta.Annotations),
			OwnerReferences: []metav1.OwnerReference{ControllerRefToWorkerGroup(g)},
		}),
		Spec: *spec,
	}
}

// JobCluster builds a DaskJob's DaskCluster. spec.cluster.metadata reaches it,
// but for Kueue's queue and priority labels: a queued job's cluster is part
// of the job's Workload, never queued on its own.
func JobCluster(j *daskv1.DaskJob) *daskv1.DaskCluster {
	meta := j.Spec.Cluster.Metadata
	name := JobClusterName(j.Name)
	labels := MergeLabels(j.Labels, meta.Labels, map[string]string{LabelClusterName: name})
	delete(labels, LabelKueueQueueName)
	delete(labels, LabelKueuePriorityClass)
	return &daskv1.DaskCluster{
		ObjectMeta: tracked(metav1.ObjectMeta{
			Name:            name,
			Namespace:       j.Namespace,
			Labels:          labels,
			Annotations:     MergeAnnotations(j.Annotations, meta.Annotations),
			OwnerReferences: []metav1.OwnerReference{ControllerRefToJob(j)},
		}),
		Spec: *j.Spec.Cluster.Spec.DeepCopy(),
	}
}

// AnnotationAttempt numbers the runner Pods of a DaskJob: 1, 2, ...
const AnnotationAttempt = "kubernetes.dask.org/attempt"

// RunnerPod builds a DaskJob's runner Pod; cluster is the job's DaskCluster as
// JobCluster builds it. restartPolicy defaults to OnFailure.
func RunnerPod(j *daskv1.DaskJob, cluster *daskv1.DaskCluster, clusterDomain string) *corev1.Pod {
	meta := j.Spec.Job.Metadata
	spec := j.Spec.Job.Spec.DeepCopy()
	noServiceLinks(spec)
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyOnFailure
	}
	injectEnv(spec, []corev1.EnvVar{{Name: EnvSchedulerAddress, Value: SchedulerAddress(cluster, clusterDomain)}})
	return &corev1.Pod{
		ObjectMeta: tracked(metav1.ObjectMeta{
			Name:      RunnerPodName(j.Name),
			Namespace: j.Namespace,
			Labels: MergeLabels(j.Labels, meta.Labels, map[string]string{
				LabelClusterName: cluster.Name,
				LabelComponent:   ComponentJobRunner,
				LabelIstioInject: "false",
			}),
			Annotations:     MergeAnnotations(j.Annotations, meta.Annotations),
			OwnerReferences: []metav1.OwnerReference{ControllerRefToJob(j)},
		}),
		Spec: *spec,
	}
}

// Rollout is a worker spec's update strategy with its defaults applied.
type Rollout struct {
	// OnDelete leaves running workers alone.
	OnDelete bool
	// MaxSurge and MaxUnavailable are in Pods, for the spec's replicas.
	MaxSurge, MaxUnavailable int
	// ProgressDeadline is how long new workers may take to become Ready
	// before the rollout is reported stalled.
	ProgressDeadline time.Duration
}

// DefaultProgressDeadline is ProgressDeadline when the spec sets none.
const DefaultProgressDeadline = 30 * time.Second

// WorkerRollout resolves a worker spec's strategy, as a Deployment does:
// maxSurge rounds up, maxUnavailable down, and when both come to 0 (a small
// percentage of few replicas) one Pod may surge so that a rollout can move.
func WorkerRollout(w *daskv1.WorkerSpec) Rollout {
	out := Rollout{ProgressDeadline: DefaultProgressDeadline}
	surge, unavailable := intstr.FromString("25%"), intstr.FromInt32(0)
	if st := w.Strategy; st != nil {
		out.OnDelete = st.Type == daskv1.OnDeleteStrategy
		if st.ProgressDeadlineSeconds != nil {
			out.ProgressDeadline = time.Duration(*st.ProgressDeadlineSeconds) * time.Second
		}
		if ru := st.RollingUpdate; ru != nil {
			if ru.MaxSurge != nil {
				surge = *ru.MaxSurge
			}
			if ru.MaxUnavailable != nil {
				unavailable = *ru.MaxUnavailable
			}
		}
	}
	replicas := int(Replicas(w))
	// Values the CRD's validation lets through always resolve; an object
	// stored before it (or a bad percentage) counts as 0.
	out.MaxSurge, _ = intstr.GetScaledValueFromIntOrPercent(&surge, replicas, true)
	out.MaxUnavailable, _ = intstr.GetScaledValueFromIntOrPercent(&unavailable, replicas, false)
	out.MaxSurge, out.MaxUnavailable = max(out.MaxSurge, 0), min(max(out.MaxUnavailable, 0), replicas)
	if out.MaxSurge == 0 && out.MaxUnavailable == 0 {
		out.MaxSurge = 1
	}
	return out
}

// Suspended reports whether a cluster is suspended (spec.suspend).
func Suspended(c *daskv1.DaskCluster) bool { return c.Spec.Suspend != nil && *c.Spec.Suspend }

// Replicas returns spec.worker.replicas with its default, 1.
func Replicas(w *daskv1.WorkerSpec) int32 {
	if w.Replicas == nil {
		return 1
	}
	return *w.Replicas
}

// EnvSchedulerHTTPRoutes is Dask's setting of the HTTP routes a scheduler
// serves (distributed.scheduler.http.routes).
const EnvSchedulerHTTPRoutes = "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES"

// SchedulerAPIRoute serves /api/v1/... (retire_workers, get_workers,
// adaptive_target, check_idle), which graceful scale-down, the autoscaler
// and idleTimeout use. Dask leaves it out of its default routes.
const SchedulerAPIRoute = "distributed.http.scheduler.api"

// DefaultSchedulerHTTPRoutes are Dask's default scheduler routes
// (distributed.yaml; /health among them, which readiness probes use) and the
// API route.
const DefaultSchedulerHTTPRoutes = `["distributed.http.scheduler.prometheus", "distributed.http.scheduler.info", ` +
	`"distributed.http.scheduler.json", "distributed.http.health", "distributed.http.proxy", "distributed.http.statics", ` +
	`"distributed.http.scheduler.api"]`

// enableSchedulerAPI sets DefaultSchedulerHTTPRoutes on the scheduler
// container (the first) when it sets no routes of its own: stock images and
// the Python client's make_cluster_spec enable no API route. A container with
// envFrom may set the variable there, so it is left alone; a user's own value
// is never changed.
func enableSchedulerAPI(spec *corev1.PodSpec) {
	if len(spec.Containers) == 0 {
		return
	}
	c := &spec.Containers[0]
	if hasEnv(c.Env, EnvSchedulerHTTPRoutes) || len(c.EnvFrom) > 0 {
		return
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: EnvSchedulerHTTPRoutes, Value: DefaultSchedulerHTTPRoutes})
}

// SchedulerRoutes reads a scheduler container's env: whether it sets its
// own HTTP routes, and whether they (may) include the API route (a value
// from a ConfigMap or Secret is taken to).
func SchedulerRoutes(env []corev1.EnvVar) (set, api bool) {
	for _, e := range env {
		if e.Name == EnvSchedulerHTTPRoutes {
			return true, e.ValueFrom != nil || strings.Contains(e.Value, SchedulerAPIRoute)
		}
	}
	return false, false
}

// SchedulerAPIDisabled tells a cluster whose scheduler sets its own HTTP
// routes without the API route: its workers cannot be retired gracefully.
func SchedulerAPIDisabled(c *daskv1.DaskCluster) (string, bool) {
	containers := c.Spec.Scheduler.Spec.Containers
	if len(containers) == 0 {
		return "", false
	}
	if set, api := SchedulerRoutes(containers[0].Env); set && !api {
		return fmt.Sprintf("the scheduler container sets %s without %s, so the scheduler serves no /api/v1 routes: "+
			"workers cannot be retired gracefully (scale-down falls back to deleting them after --retire-fallback-timeout, losing their data) "+
			"and an autoscaler gets no target; add %q to the list", EnvSchedulerHTTPRoutes, SchedulerAPIRoute, SchedulerAPIRoute), true
	}
	return "", false
}

// noServiceLinks turns off the environment variables a kubelet puts into
// every container for every Service of the namespace, unless the user's
// spec asks for them: Dask finds its scheduler by DNS, and each DaskCluster
// adds a Service, so with thousands of clusters in a namespace the variables
// alone overflow a process's argument and environment space ("argument list
// too long") and no Pod starts.
func noServiceLinks(spec *corev1.PodSpec) {
	if spec.EnableServiceLinks == nil {
		off := false
		spec.EnableServiceLinks = &off
	}
}

// injectEnv appends variables to every container (not init containers) that
// does not set them already: a user's value wins and is never duplicated.
func injectEnv(spec *corev1.PodSpec, vars []corev1.EnvVar) {
	for i := range spec.Containers {
		c := &spec.Containers[i]
		for _, v := range vars {
			if !hasEnv(c.Env, v.Name) {
				c.Env = append(c.Env, v)
			}
		}
	}
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// ServiceNeedsUpdate reports whether an existing scheduler Service differs
// from the desired one in what the operator manages, and returns the
// existing Service with those parts set to the desired values. Fields the
// API server fills in (clusterIP, nodePorts it allocated, ...) are kept.
func ServiceNeedsUpdate(existing, desired *corev1.Service) (*corev1.Service, bool) {
	out := existing.DeepCopy()
	changed := mergeMetadata(&out.ObjectMeta, &desired.ObjectMeta)
	if !maps.Equal(out.Spec.Selector, desired.Spec.Selector) {
		out.Spec.Selector = desired.Spec.Selector
		changed = true
	}
	if desired.Spec.Type != "" && out.Spec.Type != desired.Spec.Type {
		out.Spec.Type = desired.Spec.Type
		changed = true
	}
	if !portsMatch(out.Spec.Ports, desired.Spec.Ports) {
		ports := make([]corev1.ServicePort, len(desired.Spec.Ports))
		for i, p := range desired.Spec.Ports {
			ports[i] = p
			// Keep a node port the API server allocated for a port of the same name.
			if p.NodePort == 0 {
				for _, old := range out.Spec.Ports {
					if old.Name == p.Name {
						ports[i].NodePort = old.NodePort
					}
				}
			}
		}
		out.Spec.Ports = ports
		changed = true
	}
	return out, changed
}

// mergeMetadata sets the desired labels and annotations on meta and removes
// those an earlier desired state had put there (AnnotationPropagatedLabels,
// AnnotationPropagatedAnnotations) and the current one lacks. Keys that
// others added are kept. It reports whether anything changed.
func mergeMetadata(meta, desired *metav1.ObjectMeta) bool {
	oldLabels := splitKeys(meta.Annotations[AnnotationPropagatedLabels])
	oldAnnotations := splitKeys(meta.Annotations[AnnotationPropagatedAnnotations])
	changed := false
	for _, k := range oldLabels {
		if !operatorLabels[k] {
			changed = dropUnwanted(meta.Labels, desired.Labels, k) || changed
		}
	}
	for _, k := range oldAnnotations {
		if !internalAnnotation(k) {
			changed = dropUnwanted(meta.Annotations, desired.Annotations, k) || changed
		}
	}
	for _, k := range []string{AnnotationPropagatedLabels, AnnotationPropagatedAnnotations} {
		changed = dropUnwanted(meta.Annotations, desired.Annotations, k) || changed
	}
	changed = setAll(&meta.Labels, desired.Labels) || changed
	changed = setAll(&meta.Annotations, desired.Annotations) || changed
	return changed
}

// dropUnwanted deletes key from have unless want has it.
func dropUnwanted(have, want map[string]string, key string) bool {
	if _, ok := want[key]; ok {
		return false
	}
	if _, ok := have[key]; !ok {
		return false
	}
	delete(have, key)
	return true
}

// setAll sets every key of want in *have.
func setAll(have *map[string]string, want map[string]string) bool {
	changed := false
	for k, v := range want {
		if old, ok := (*have)[k]; !ok || old != v {
			if *have == nil {
				*have = map[string]string{}
			}
			(*have)[k] = v
			changed = true
		}
	}
	return changed
}

// tracked records in meta which of its labels and annotations it receives
// from its parents, so that they are removed once the parents drop them.
func tracked(meta metav1.ObjectMeta) metav1.ObjectMeta {
	labels := joinKeys(meta.Labels, func(k string) bool { return !operatorLabels[k] })
	annotations := joinKeys(meta.Annotations, func(k string) bool { return !internalAnnotation(k) })
	for k, v := range map[string]string{AnnotationPropagatedLabels: labels, AnnotationPropagatedAnnotations: annotations} {
		if v == "" {
			continue
		}
		if meta.Annotations == nil {
			meta.Annotations = map[string]string{}
		}
		meta.Annotations[k] = v
	}
	return meta
}

// joinKeys returns the sorted keys of m that keep accepts, comma-separated.
// Label and annotation keys cannot contain commas.
func joinKeys(m map[string]string, keep func(string) bool) string {
	var keys []string
	for k := range m {
		if keep(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

func splitKeys(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func portsMatch(have, want []corev1.ServicePort) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range want {
		h, w := have[i], want[i]
		if h.Name != w.Name || h.Port != w.Port || (w.Protocol != "" && h.Protocol != w.Protocol) {
			return false
		}
		if w.TargetPort != (intstr.IntOrString{}) && h.TargetPort != w.TargetPort {
			return false
		}
		if w.NodePort != 0 && h.NodePort != w.NodePort {
			return false
		}
	}
	return true
}

// WorkerGroupNeedsUpdate reports whether an existing default worker group
// differs from the desired one, and returns it with the desired spec and
// metadata.
func WorkerGroupNeedsUpdate(existing, desired *daskv1.DaskWorkerGroup) (*daskv1.DaskWorkerGroup, bool) {
	out := existing.DeepCopy()
	changed := mergeMetadata(&out.ObjectMeta, &desired.ObjectMeta)
	if !equality.Semantic.DeepEqual(&out.Spec.Worker, &desired.Spec.Worker) || out.Spec.Cluster != desired.Spec.Cluster {
		out.Spec.Worker = desired.Spec.Worker
		out.Spec.Cluster = desired.Spec.Cluster
		changed = true
	}
	return out, changed
}

// MetadataPatch returns a merge patch that gives obj the labels and
// annotations of desired and removes those its parents dropped (see
// mergeMetadata), or nil when nothing is to change. Keys others added are
// left alone.
func MetadataPatch(obj, desired metav1.Object) []byte {
	have := metav1.ObjectMeta{Labels: obj.GetLabels(), Annotations: obj.GetAnnotations()}
	want := metav1.ObjectMeta{Labels: maps.Clone(desired.GetLabels()), Annotations: desired.GetAnnotations()}
	// A Pod's template hash tells what it was made from: never rewritten.
	delete(want.Labels, LabelTemplateHash)
	merged := have.DeepCopy()
	if !mergeMetadata(merged, &want) {
		return nil
	}
	patch := map[string]map[string]any{"metadata": {}}
	if changed := diffMap(have.Labels, merged.Labels); len(changed) > 0 {
		patch["metadata"]["labels"] = changed
	}
	if changed := diffMap(have.Annotations, merged.Annotations); len(changed) > 0 {
		patch["metadata"]["annotations"] = changed
	}
	data, _ := json.Marshal(patch)
	return data
}

// diffMap returns the merge patch that turns have into want: changed keys
// with their new value, removed keys with null.
func diffMap(have, want map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range want {
		if old, ok := have[k]; !ok || old != v {
			out[k] = v
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			out[k] = nil
		}
	}
	return out
}

// ChangedFields lists the fields of want, as JSON paths under spec, whose
// values differ in have: the changes a new template brings to a running
// Pod. Fields want leaves unset are skipped (the API server defaults them
// in have), so a removed field shows in no path. Lists of another length
// show as one path.
func ChangedFields(want, have *corev1.PodSpec) []string {
	var w, h any
	wb, _ := json.Marshal(want)
	hb, _ := json.Marshal(have)
	_ = json.Unmarshal(wb, &w)
	_ = json.Unmarshal(hb, &h)
	var out []string
	changedPaths(w, h, "spec", &out)
	return out
}

func changedPaths(want, have any, path string, out *[]string) {
	switch w := want.(type) {
	case map[string]any:
		h, _ := have.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(w)) {
			changedPaths(w[k], h[k], path+"."+k, out)
		}
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			*out = append(*out, path)
			return
		}
		for i := range w {
			changedPaths(w[i], h[i], fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if fmt.Sprint(want) != fmt.Sprint(have) {
			*out = append(*out, path)
		}
	}
}
