#!/usr/bin/env bash
# Prints the address of a DaskCluster's scheduler, tcp://<scheduler Pod IP>:8786,
# for Dask clients on this machine when Pods run on the node agent (`make dev`):
# the host reaches Pod IPs, but Service names resolve only inside Pods, and the
# host's /etc/hosts is left alone.
#
#   KUBECONFIG=<the kubeconfig make dev printed> hack/dask-address.sh <cluster> [namespace]
#   /usr/bin/python3 -c "from dask.distributed import Client; c = Client('$(hack/dask-address.sh example)'); ..."
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 <cluster> [namespace]" >&2
  exit 2
fi
cluster=$1
namespace=${2:-default}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kubectl=${KUBECTL:-$("$root/hack/tools.sh")/kubectl}
ip=$("$kubectl" get pods -n "$namespace" \
  -l "dask.org/cluster-name=$cluster,dask.org/component=scheduler" \
  --field-selector=status.phase=Running \
  -o jsonpath='{.items[0].status.podIP}')
if [[ -z "$ip" ]]; then
  echo "no running scheduler Pod for DaskCluster $namespace/$cluster" >&2
  exit 1
fi
echo "tcp://$ip:8786"
