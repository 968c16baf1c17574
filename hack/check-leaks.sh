#!/usr/bin/env bash
# Fails when a process of the local control plane outlived the tests.
set -euo pipefail
bin=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && hack/tools.sh)
if pgrep -f "^$bin/" >/dev/null; then
  echo "processes of the test control plane are still running:" >&2
  pgrep -af "^$bin/" >&2
  exit 1
fi
echo "no control plane process left behind"

# Pods of the node agent (pkg/testenv, RealPods): network namespaces, links,
# /etc/netns folders and the processes in them.
leaks=$( { ip netns list 2>/dev/null | grep -E '^dko[0-9]+-' || true; \
           ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^dko[0-9]+' || true; \
           ls /etc/netns 2>/dev/null | grep -E '^dko[0-9]+-' || true; } )
if [[ -n "$leaks" ]]; then
  echo "node agent leftovers (netns, links or /etc/netns folders):" >&2
  echo "$leaks" >&2
  exit 1
fi
if pgrep -f "nodeagent --kubeconfig" >/dev/null; then
  echo "a node agent is still running:" >&2
  pgrep -af "nodeagent --kubeconfig" >&2
  exit 1
fi
echo "no network namespace, link or node agent left behind"
# Processes still working in a test environment's folder (a Pod process of
# the node agent that outlived its namespace).
stray=$(for p in /proc/[0-9]*; do
  cwd=$(readlink "$p/cwd" 2>/dev/null || true)
  [[ "$cwd" == */dask-operator-testenv-*/nodeagent/* ]] && echo "${p#/proc/} $cwd"
done || true)
if [[ -n "$stray" ]]; then
  echo "Pod processes left behind:" >&2
  echo "$stray" >&2
  exit 1
fi
