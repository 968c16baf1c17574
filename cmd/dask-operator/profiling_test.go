package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProfilesAreServedOnlyWithProfiling(t *testing.T) {
	get := func(profiling bool, path string) int {
		mux := http.NewServeMux()
		for p, h := range metricsHandlers(profiling) {
			mux.Handle(p, h)
		}
		srv := httptest.NewServer(mux)
		defer srv.Close()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, get(true, "/debug/pprof/heap"))
	assert.Equal(t, http.StatusOK, get(true, "/metrics"))
	assert.Equal(t, http.StatusNotFound, get(false, "/debug/pprof/heap"))
	assert.Equal(t, http.StatusOK, get(false, "/metrics"))
}
