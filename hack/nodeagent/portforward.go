package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// The port-forward protocol the API server speaks to kubelets: SPDY streams
// in pairs (an error stream and a data stream) that share a requestID and
// name the Pod's port.
const (
	portForwardProtocol = "portforward.k8s.io"
	headerStreamType    = "streamType"
	headerPort          = "port"
	headerRequestID     = "requestID"
	streamTypeData      = "data"
	streamTypeError     = "error"
)

// portForward answers /portForward/{namespace}/{pod}: kubectl port-forward
// (and the KubeCluster client's port-forwarding) reach a Pod's port through
// the API server.
func (a *agent) portForward(w http.ResponseWriter, r *http.Request) {
	pod, ok := a.servedPod(w, r)
	if !ok {
		return
	}
	if pod.Status.PodIP == "" {
		http.Error(w, fmt.Sprintf("pod %s/%s has no address yet", pod.Namespace, pod.Name), http.StatusBadRequest)
		return
	}
	if wsstream.IsWebSocketRequest(r) {
		// The WebSocket protocol, which the API server passes on as it is:
		// what kr8s (the KubeCluster client's library) speaks.
		serveWebSocketPortForward(w, r, pod.Status.PodIP, klog.KObj(pod).String())
		return
	}
	if _, err := httpstream.Handshake(r, w, []string{portForwardProtocol}); err != nil {
		return // Handshake wrote the error
	}
	streams := make(chan httpstream.Stream, 4)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, _ <-chan struct{}) error {
		streams <- s
		return nil
	})
	if conn == nil {
		return // UpgradeResponse wrote the error
	}
	defer conn.Close()
	conn.SetIdleTimeout(4 * time.Hour)

	type pair struct{ data, errs httpstream.Stream }
	pairs := map[string]*pair{}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-conn.CloseChan():
			return
		case <-r.Context().Done():
			return
		case s := <-streams:
			id := s.Headers().Get(headerRequestID)
			p := pairs[id]
			if p == nil {
				p = &pair{}
				pairs[id] = p
			}
			switch s.Headers().Get(headerStreamType) {
			case streamTypeData:
				p.data = s
			case streamTypeError:
				p.errs = s
			default:
				_ = s.Reset()
				continue
			}
			if p.data == nil || p.errs == nil {
				continue
			}
			delete(pairs, id)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer p.errs.Close()
				defer p.data.Close()
				port, err := strconv.ParseUint(p.data.Headers().Get(headerPort), 10, 16)
				if err == nil {
					err = forwardTo(net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port))), p.data)
				}
				if err != nil {
					klog.InfoS("Port forward ended", "pod", klog.KObj(pod), "port", p.data.Headers().Get(headerPort), "err", err)
					fmt.Fprintf(p.errs, "forward to port %s of pod %s: %v", p.data.Headers().Get(headerPort), pod.Name, err)
				}
			}()
		}
	}
}

// serveWebSocketPortForward speaks the kubelet's WebSocket port-forward
// protocol (v4.channel.k8s.io): the ports are the request's port (or ports)
// parameters; port i has data channel 2i and error channel 2i+1, and each
// channel first carries its port number (2 bytes, little-endian).
func serveWebSocketPortForward(w http.ResponseWriter, r *http.Request, podIP, what string) {
	var ports []uint16
	for _, key := range []string{"port", "ports"} {
		for _, v := range r.URL.Query()[key] {
			for _, p := range strings.Split(v, ",") {
				n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
				if err != nil || n == 0 {
					http.Error(w, fmt.Sprintf("invalid port %q", p), http.StatusBadRequest)
					return
				}
				ports = append(ports, uint16(n))
			}
		}
	}
	if len(ports) == 0 {
		http.Error(w, "no port to forward (query parameter port)", http.StatusBadRequest)
		return
	}
	channels := make([]wsstream.ChannelType, 0, 2*len(ports))
	for range ports {
		channels = append(channels, wsstream.ReadWriteChannel, wsstream.WriteChannel)
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		"": {Binary: true, Channels: channels},
		"v4." + wsstream.ChannelWebSocketProtocol:       {Binary: true, Channels: channels},
		"v4." + wsstream.Base64ChannelWebSocketProtocol: {Binary: false, Channels: channels},
	})
	conn.SetIdleTimeout(4 * time.Hour)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		klog.InfoS("Port forward over WebSocket refused", "pod", what, "err", err)
		return
	}
	defer conn.Close()
	var wg sync.WaitGroup
	for i, port := range ports {
		data, errs := streams[2*i], streams[2*i+1]
		b := make([]byte, 2)
		binary.LittleEndian.PutUint16(b, port)
		if _, err := data.Write(b); err != nil {
			return
		}
		if _, err := errs.Write(b); err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := net.JoinHostPort(podIP, strconv.Itoa(int(port)))
			if err := forwardWebSocket(addr, data); err != nil {
				klog.InfoS("Port forward ended", "pod", what, "port", port, "err", err)
				fmt.Fprintf(errs, "forward to port %d of pod %s: %v", port, what, err)
			}
		}()
	}
	wg.Wait()
}

// forwardWebSocket copies a WebSocket channel to a TCP address and back.
// The channel ends only with the WebSocket (the protocol has no half-close),
// and then nothing more can reach the client: the connection is closed.
func forwardWebSocket(addr string, stream io.ReadWriter) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	clientGone := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, stream)
		close(clientGone)
		_ = c.Close()
	}()
	_, err = io.Copy(stream, c)
	_ = c.Close()
	select {
	case <-clientGone:
		return nil // the client left: whatever the copy said is no news
	default:
	}
	return err
}

// forwardTo copies a stream to a TCP address and back, until the far end
// closes or the stream ends.
func forwardTo(addr string, stream io.ReadWriter) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	conn := c.(*net.TCPConn)
	toPod := make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, stream)
		_ = conn.CloseWrite() // the client is done sending; the Pod may still answer
		close(toPod)
	}()
	_, err = io.Copy(stream, conn)
	if err != nil {
		return err
	}
	select {
	case <-toPod:
	case <-time.After(time.Second):
	}
	return nil
}

// servedPod finds the Pod a kubelet API request names, or answers the
// request with why not.
func (a *agent) servedPod(w http.ResponseWriter, r *http.Request) (*corev1.Pod, bool) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	pod, err := a.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && pod.Spec.NodeName != a.node) {
		http.Error(w, fmt.Sprintf("pod %s/%s is not on node %s", ns, name, a.node), http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, false
	}
	return pod, true
}
