package main

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forwardTo sends what the client sent, lets the Pod answer after the
// client finished sending, and returns the answer.
func TestForwardTo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		got, _ := io.ReadAll(c) // until the client's side is closed
		_, _ = c.Write([]byte("got " + string(got)))
	}()
	var answer bytes.Buffer
	stream := struct {
		io.Reader
		io.Writer
	}{strings.NewReader("ping"), &answer}
	require.NoError(t, forwardTo(l.Addr().String(), stream))
	assert.Equal(t, "got ping", answer.String())

	l.Close()
	assert.Error(t, forwardTo(l.Addr().String(), stream), "nothing listens")
}
