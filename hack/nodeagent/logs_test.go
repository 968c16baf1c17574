package main

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTailLines(t *testing.T) {
	data := []byte("one\ntwo\nthree\n")
	assert.Equal(t, "one\ntwo\nthree\n", string(tailLines(data, -1)))
	assert.Equal(t, "three\n", string(tailLines(data, 1)))
	assert.Equal(t, "two\nthree\n", string(tailLines(data, 2)))
	assert.Equal(t, "one\ntwo\nthree\n", string(tailLines(data, 10)))
	assert.Empty(t, tailLines(data, 0))
	assert.Equal(t, "three", string(tailLines([]byte("one\ntwo\nthree"), 1)), "a last line without newline counts")
	assert.Empty(t, tailLines(nil, 3))
}

func TestParseLogOptions(t *testing.T) {
	opts, err := parseLogOptions(httptest.NewRequest("GET", "/containerLogs/ns/p/c", nil))
	require.NoError(t, err)
	assert.Equal(t, logOptions{tailLines: -1, limitBytes: -1}, opts)

	opts, err = parseLogOptions(httptest.NewRequest("GET", "/containerLogs/ns/p/c?follow=true&tailLines=5&limitBytes=100&timestamps=true", nil))
	require.NoError(t, err)
	assert.Equal(t, logOptions{follow: true, tailLines: 5, limitBytes: 100}, opts)

	_, err = parseLogOptions(httptest.NewRequest("GET", "/containerLogs/ns/p/c?tailLines=-1", nil))
	assert.ErrorContains(t, err, "tailLines")
	_, err = parseLogOptions(httptest.NewRequest("GET", "/containerLogs/ns/p/c?follow=maybe", nil))
	assert.ErrorContains(t, err, "follow")
}
