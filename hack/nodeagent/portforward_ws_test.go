package main

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"
)

func dialPortForward(t *testing.T, port int) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveWebSocketPortForward(w, r, "127.0.0.1", "ns/pod")
	}))
	t.Cleanup(srv.Close)
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(srv.URL, "http")+"/portForward/ns/pod?ports="+strconv.Itoa(port), srv.URL)
	require.NoError(t, err)
	cfg.Protocol = []string{"v4.channel.k8s.io"} // what kr8s asks for
	ws, err := websocket.DialConfig(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { ws.Close() })
	require.NoError(t, ws.SetDeadline(time.Now().Add(10*time.Second)))
	// Each channel first says which port it carries.
	for _, ch := range []byte{0, 1} {
		var msg []byte
		require.NoError(t, websocket.Message.Receive(ws, &msg))
		require.Len(t, msg, 3)
		assert.Equal(t, ch, msg[0])
		assert.Equal(t, uint16(port), binary.LittleEndian.Uint16(msg[1:]))
	}
	return ws
}

// Issue 14: kr8s, the KubeCluster client's library, port-forwards over
// WebSockets (the API server passes that on to the node); the node agent
// carries the bytes both ways, as a kubelet does.
func TestWebSocketPortForwardCarriesBytes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	ws := dialPortForward(t, l.Addr().(*net.TCPAddr).Port)
	for _, text := range []string{"hello", "dask"} {
		require.NoError(t, websocket.Message.Send(ws, append([]byte{0}, text...)))
		var msg []byte
		require.NoError(t, websocket.Message.Receive(ws, &msg))
		assert.Equal(t, append([]byte{0}, text...), msg)
	}
}

// Nothing listening at the port: the error channel says so.
func TestWebSocketPortForwardReportsErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ws := dialPortForward(t, port)
	var msg []byte
	require.NoError(t, websocket.Message.Receive(ws, &msg))
	assert.Equal(t, byte(1), msg[0])
	assert.Contains(t, string(msg[1:]), "connection refused")
}
