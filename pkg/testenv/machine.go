package testenv

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Machine describes this machine for benchmark and fault-suite reports:
// cores, CPU model, memory, Go version.
func Machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	var mem string
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.Split(string(data), "\n")[0])[1] + " kB memory"
	}
	return fmt.Sprintf("%d cores (%s), %s, %s", runtime.NumCPU(), model, mem, runtime.Version())
}
