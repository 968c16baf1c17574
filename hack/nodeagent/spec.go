package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// expand replaces $(VAR) by vars[VAR] as the kubelet does in a container's
// command, args and env values: $$ is a literal $, and a reference to an
// unknown variable or an unterminated one is left as written.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// valueSource reads the ConfigMap and Secret keys that env vars refer to.
type valueSource interface {
	configMapKey(namespace, name, key string) (string, bool, error)
	secretKey(namespace, name, key string) (string, bool, error)
}

// containerEnv resolves a container's env list in order, as the kubelet
// does: a value may refer to variables defined before it.
func containerEnv(pod *corev1.Pod, c *corev1.Container, podIP, hostIP string, src valueSource) (map[string]string, []string, error) {
	vars := map[string]string{}
	var order []string
	for _, e := range c.Env {
		var v string
		switch {
		case e.ValueFrom == nil:
			v = expand(e.Value, vars)
		case e.ValueFrom.FieldRef != nil:
			var err error
			if v, err = fieldValue(pod, e.ValueFrom.FieldRef.FieldPath, podIP, hostIP); err != nil {
				return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			val, ok, err := src.configMapKey(pod.Namespace, r.Name, r.Key)
			if err != nil || (!ok && (r.Optional == nil || !*r.Optional)) {
				return nil, nil, fmt.Errorf("env %s: ConfigMap %s key %s: not found (%v)", e.Name, r.Name, r.Key, err)
			}
			if !ok {
				continue
			}
			v = val
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			val, ok, err := src.secretKey(pod.Namespace, r.Name, r.Key)
			if err != nil || (!ok && (r.Optional == nil || !*r.Optional)) {
				return nil, nil, fmt.Errorf("env %s: Secret %s key %s: not found (%v)", e.Name, r.Name, r.Key, err)
			}
			if !ok {
				continue
			}
			v = val
		default:
			return nil, nil, fmt.Errorf("env %s: only value, fieldRef, configMapKeyRef and secretKeyRef are supported here", e.Name)
		}
		if _, seen := vars[e.Name]; !seen {
			order = append(order, e.Name)
		}
		vars[e.Name] = v
	}
	return vars, order, nil
}

func fieldValue(pod *corev1.Pod, path, podIP, hostIP string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	for _, prefix := range []string{"metadata.labels", "metadata.annotations"} {
		if strings.HasPrefix(path, prefix+"['") && strings.HasSuffix(path, "']") {
			key := path[len(prefix)+2 : len(path)-2]
			if prefix == "metadata.labels" {
				return pod.Labels[key], nil
			}
			return pod.Annotations[key], nil
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported here", path)
}

// commandLine is what runs for a container: its command and args with
// $(VAR) expanded. An image's entrypoint is not known here, so a container
// without a command runs its args (the Dask images' entrypoint runs them too).
func commandLine(c *corev1.Container, vars map[string]string) ([]string, error) {
	var argv []string
	for _, s := range append(append([]string{}, c.Command...), c.Args...) {
		argv = append(argv, expand(s, vars))
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("container %s has neither command nor args, and image entrypoints are not known here", c.Name)
	}
	return argv, nil
}

// probeTarget is where an HTTP or TCP readiness probe connects.
type probeTarget struct {
	http bool
	path string
	port int
}

// readinessTarget returns the first container's readiness probe, or nil when
// it has none (or an exec/grpc probe, which the agent treats as passing).
func readinessTarget(c *corev1.Container) (*probeTarget, error) {
	p := c.ReadinessProbe
	if p == nil {
		return nil, nil
	}
	switch {
	case p.HTTPGet != nil:
		port, err := containerPort(c, p.HTTPGet.Port)
		if err != nil {
			return nil, err
		}
		path := p.HTTPGet.Path
		if path == "" {
			path = "/"
		}
		return &probeTarget{http: true, path: path, port: port}, nil
	case p.TCPSocket != nil:
		port, err := containerPort(c, p.TCPSocket.Port)
		if err != nil {
			return nil, err
		}
		return &probeTarget{port: port}, nil
	}
	return nil, nil
}

func containerPort(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, port.StrVal)
}

// serviceEntry is a Service with the address its DNS names resolve to.
type serviceEntry struct {
	namespace, name, ip string
}

// serviceEntries resolves every Service of the cluster to one ready Pod it
// selects (sorted by namespace and name; Services without one are left
// out). There is no service proxy: a name goes straight to a Pod, which is
// enough for Services that select one Pod, such as a Dask scheduler's. It is
// computed once for all the pods' hosts files.
func serviceEntries(services []*corev1.Service, pods []*corev1.Pod) []serviceEntry {
	var out []serviceEntry
	for _, svc := range services {
		if ip := serviceBackend(svc, pods); ip != "" {
			out = append(out, serviceEntry{namespace: svc.Namespace, name: svc.Name, ip: ip})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].namespace != out[j].namespace {
			return out[i].namespace < out[j].namespace
		}
		return out[i].name < out[j].name
	})
	return out
}

// hostsFile renders /etc/hosts for a pod: the pod's own name, and every
// Service by its DNS names (short names for the pod's own namespace).
func hostsFile(pod *corev1.Pod, podIP, clusterDomain string, entries []serviceEntry) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	fmt.Fprintf(&b, "%s\t%s\n", podIP, pod.Name)
	for _, e := range entries {
		names := []string{
			fmt.Sprintf("%s.%s.svc.%s", e.name, e.namespace, clusterDomain),
			fmt.Sprintf("%s.%s.svc", e.name, e.namespace),
			fmt.Sprintf("%s.%s", e.name, e.namespace),
		}
		if e.namespace == pod.Namespace {
			names = append(names, e.name)
		}
		fmt.Fprintf(&b, "%s\t%s\n", e.ip, strings.Join(names, " "))
	}
	return b.String()
}

// serviceBackend picks the IP of the ready Pod a Service selects (by name,
// for a stable answer), else of a running one, else "".
func serviceBackend(svc *corev1.Service, pods []*corev1.Pod) string {
	if len(svc.Spec.Selector) == 0 {
		return ""
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var ready, running *corev1.Pod
	for _, p := range pods {
		if p.Namespace != svc.Namespace || p.DeletionTimestamp != nil || p.Status.PodIP == "" ||
			p.Status.Phase != corev1.PodRunning || !sel.Matches(labels.Set(p.Labels)) || net.ParseIP(p.Status.PodIP) == nil {
			continue
		}
		if podReady(p) {
			if ready == nil || p.Name < ready.Name {
				ready = p
			}
		} else if running == nil || p.Name < running.Name {
			running = p
		}
	}
	switch {
	case ready != nil:
		return ready.Status.PodIP
	case running != nil:
		return running.Status.PodIP
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// serviceLinks are the variables a kubelet gives every container of a Pod
// whose enableServiceLinks is unset or true: for each Service of its
// namespace with a cluster IP, <NAME>_SERVICE_HOST, _SERVICE_PORT,
// _SERVICE_PORT_<PORT NAME> and the Docker links' <NAME>_PORT... (as
// kubelet's envvars.FromServices).
func serviceLinks(pod *corev1.Pod, services []*corev1.Service) map[string]string {
	out := map[string]string{}
	if pod.Spec.EnableServiceLinks != nil && !*pod.Spec.EnableServiceLinks {
		return out
	}
	for _, svc := range services {
		ip := svc.Spec.ClusterIP
		if svc.Namespace != pod.Namespace || ip == "" || ip == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
			continue
		}
		name := envName(svc.Name)
		first := svc.Spec.Ports[0]
		out[name+"_SERVICE_HOST"] = ip
		out[name+"_SERVICE_PORT"] = strconv.Itoa(int(first.Port))
		for _, p := range svc.Spec.Ports {
			if p.Name != "" {
				out[name+"_SERVICE_PORT_"+envName(p.Name)] = strconv.Itoa(int(p.Port))
			}
		}
		proto := func(p corev1.ServicePort) string {
			return strings.ToLower(string(cmpOr(p.Protocol, corev1.ProtocolTCP)))
		}
		out[name+"_PORT"] = fmt.Sprintf("%s://%s", proto(first), net.JoinHostPort(ip, strconv.Itoa(int(first.Port))))
		for _, p := range svc.Spec.Ports {
			prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(proto(p)))
			out[prefix] = fmt.Sprintf("%s://%s", proto(p), net.JoinHostPort(ip, strconv.Itoa(int(p.Port))))
			out[prefix+"_PROTO"] = proto(p)
			out[prefix+"_PORT"] = strconv.Itoa(int(p.Port))
			out[prefix+"_ADDR"] = ip
		}
	}
	return out
}

func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

func cmpOr(p, def corev1.Protocol) corev1.Protocol {
	if p == "" {
		return def
	}
	return p
}
