package daskctl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Forward is where a port-forward to a scheduler listens.
type Forward struct {
	// Address is the scheduler's comm address (tcp://127.0.0.1:<port>).
	Address string
	// Dashboard is its dashboard (http://127.0.0.1:<port>/status).
	Dashboard string
}

// ForwardOptions choose the local ports (0: any free one, kept across
// reconnects) and where to report.
type ForwardOptions struct {
	LocalAddress            string
	CommPort, DashboardPort int
	// Ready is called once, when the forward first listens.
	Ready func(Forward)
	// Log tells of lost and restored forwards.
	Log func(string)
}

// PortForward forwards local ports to the cluster's scheduler Pod (comm and
// dashboard) until ctx ends. When the forward breaks (the connection to the
// API server or node drops, the scheduler Pod is replaced), it forwards
// again on the same local ports, to whatever Pod is the scheduler then.
func (c *Client) PortForward(ctx context.Context, ns, cluster string, o ForwardOptions) error {
	if _, err := c.GetCluster(ctx, ns, cluster); err != nil {
		return err
	}
	if o.LocalAddress == "" {
		o.LocalAddress = "127.0.0.1"
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			o.Log(fmt.Sprintf(format, args...))
		}
	}
	local := [2]int{o.CommPort, o.DashboardPort}
	first := true
	backoff := 100 * time.Millisecond
	for {
		err := c.forwardOnce(ctx, ns, cluster, o.LocalAddress, &local, func() {
			backoff = 100 * time.Millisecond
			if first {
				first = false
				if o.Ready != nil {
					o.Ready(Forward{
						Address:   fmt.Sprintf("tcp://%s:%d", o.LocalAddress, local[0]),
						Dashboard: fmt.Sprintf("http://%s:%d/status", o.LocalAddress, local[1]),
					})
				}
			} else {
				logf("port-forward to daskcluster %s restored on the same ports", cluster)
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		if first {
			return err // never worked: say why and stop
		}
		logf("port-forward to daskcluster %s lost (%v); reconnecting", cluster, err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// forwardOnce forwards until the forward breaks or ctx ends; local ports 0
// are replaced by the ones chosen.
func (c *Client) forwardOnce(ctx context.Context, ns, cluster, address string, local *[2]int, ready func()) error {
	name := cluster + "-scheduler"
	pod, err := c.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Explain(err, "Pod", ns, name)
	}
	if pod.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("scheduler Pod %s is %s, not Running", name, pod.Status.Phase)
	}
	remote := [2]int{containerPort(pod, "tcp-comm", 8786), containerPort(pod, "http-dashboard", 8787)}
	dialer, err := c.dialer(ns, name)
	if err != nil {
		return err
	}
	stop, readyCh := make(chan struct{}), make(chan struct{})
	var errOut strings.Builder
	fw, err := portforward.NewOnAddresses(dialer, []string{address},
		[]string{fmt.Sprintf("%d:%d", local[0], remote[0]), fmt.Sprintf("%d:%d", local[1], remote[1])},
		stop, readyCh, io.Discard, &errOut)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-readyCh:
		ports, err := fw.GetPorts()
		if err == nil && len(ports) == 2 {
			local[0], local[1] = int(ports[0].Local), int(ports[1].Local)
		}
		ready()
	case err := <-done:
		return fmt.Errorf("port-forward to Pod %s: %w", name, Explain(err, "Pod", ns, name))
	case <-ctx.Done():
		close(stop)
		<-done
		return nil
	}
	select {
	case err := <-done:
		if err == nil {
			err = fmt.Errorf("the connection ended")
		}
		return err
	case <-ctx.Done():
		close(stop)
		<-done
		return nil
	}
}

// dialer reaches a Pod's portforward subresource over WebSockets, as
// kubectl does, falling back to SPDY for API servers that do not tunnel.
func (c *Client) dialer(ns, pod string) (httpstream.Dialer, error) {
	u := c.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(c.Config)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	tunnel, err := portforward.NewSPDYOverWebsocketDialer(u, c.Config)
	if err != nil {
		return spdyDialer, nil
	}
	return portforward.NewFallbackDialer(tunnel, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	}), nil
}

func containerPort(p *corev1.Pod, name string, def int) int {
	for _, ct := range p.Spec.Containers {
		for _, port := range ct.Ports {
			if port.Name == name {
				return int(port.ContainerPort)
			}
		}
	}
	return def
}
