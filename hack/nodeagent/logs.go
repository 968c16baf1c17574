package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/klog/v2"
)

// kubeletPort is where the agent serves the part of the kubelet API that
// the API server proxies for `kubectl logs` and `kubectl port-forward`, on
// the node's address.
const kubeletPort = 10250

// serveLogs answers the kubelet API's GET /containerLogs/{namespace}/{pod}/{container}
// and /portForward/{namespace}/{pod} over TLS with a self-signed certificate
// (the API server does not verify kubelet certificates unless told to). It
// returns once the listener is open.
func (a *agent) serveLogs(ctx context.Context, addr string) error {
	cert, err := selfSignedCert(net.ParseIP(a.net.NodeIP()))
	if err != nil {
		return err
	}
	l, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", a.containerLogs)
	mux.HandleFunc("/portForward/{namespace}/{pod}", a.portForward)
	mux.HandleFunc("/portForward/{namespace}/{pod}/{uid}", a.portForward)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Log server stopped")
		}
	}()
	return nil
}

func (a *agent) containerLogs(w http.ResponseWriter, r *http.Request) {
	pod, ok := a.servedPod(w, r)
	if !ok {
		return
	}
	ns, name, container := pod.Namespace, pod.Name, r.PathValue("container")
	if len(pod.Spec.Containers) == 0 || container != pod.Spec.Containers[0].Name {
		http.Error(w, fmt.Sprintf("the node agent runs only the first container of a pod, not %q", container), http.StatusBadRequest)
		return
	}
	opts, err := parseLogOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	path := filepath.Join(a.stateDir, "pods", ns+"_"+name+"_"+string(pod.UID), "container.log")
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	offset := int64(len(data))
	out := tailLines(data, opts.tailLines)
	if opts.limitBytes >= 0 && int64(len(out)) > opts.limitBytes {
		_, _ = w.Write(out[:opts.limitBytes])
		return
	}
	_, _ = w.Write(out)
	if !opts.follow {
		return
	}
	written := int64(len(out))
	a.followLog(r.Context(), w, path, offset, written, opts.limitBytes, ns+"/"+name)
}

// followLog streams what is appended to a log until the client goes, the
// pod's process is gone or limitBytes is reached.
func (a *agent) followLog(ctx context.Context, w http.ResponseWriter, path string, offset, written, limit int64, key string) {
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := a.hasRuntime(key)
		if f, err := os.Open(path); err == nil {
			if _, err := f.Seek(offset, io.SeekStart); err == nil {
				var chunk io.Reader = f
				if limit >= 0 {
					chunk = io.LimitReader(f, limit-written)
				}
				n, _ := io.Copy(w, chunk)
				offset += n
				written += n
				if n > 0 && flusher != nil {
					flusher.Flush()
				}
			}
			f.Close()
		}
		if !alive || (limit >= 0 && written >= limit) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (a *agent) hasRuntime(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.runtimes[key]
	return ok
}

type logOptions struct {
	follow     bool
	tailLines  int64 // -1: all
	limitBytes int64 // -1: no limit
}

// parseLogOptions reads the query the API server passes on from
// PodLogOptions. timestamps, previous and sinceSeconds are accepted and
// ignored: the log is one file across restarts, without timestamps.
func parseLogOptions(r *http.Request) (logOptions, error) {
	q := r.URL.Query()
	opts := logOptions{tailLines: -1, limitBytes: -1}
	var err error
	if v := q.Get("follow"); v != "" {
		if opts.follow, err = strconv.ParseBool(v); err != nil {
			return opts, fmt.Errorf("follow: %w", err)
		}
	}
	for name, dst := range map[string]*int64{"tailLines": &opts.tailLines, "limitBytes": &opts.limitBytes} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return opts, fmt.Errorf("%s: want a number of at least 0, got %q", name, v)
			}
			*dst = n
		}
	}
	return opts, nil
}

// tailLines returns the last n lines of data (all of it when n < 0).
func tailLines(data []byte, n int64) []byte {
	if n < 0 {
		return data
	}
	if n == 0 {
		return nil
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			n--
			if n == 0 {
				return data[i+1:]
			}
		}
	}
	return data
}

func selfSignedCert(ip net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "dask-operator-nodeagent"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{ip},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// podLogHint is what the agent logs when the log server cannot start.
func podLogHint(stateDir string) string {
	return "kubectl logs will not work; Pod logs are in " + filepath.Join(stateDir, "pods", "<ns>_<pod>_<uid>", "container.log")
}
